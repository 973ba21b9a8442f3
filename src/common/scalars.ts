import { DateTimeResolver, JSONObjectResolver } from 'graphql-scalars';
import type { ValueTransformer } from 'typeorm';

/** ISO-8601 in UTC with milliseconds (`2026-01-02T03:04:05.678Z`). */
export const DateTimeScalar = DateTimeResolver;
export const JSONObjectScalar = JSONObjectResolver;

/** numeric columns come back as strings from pg; the API speaks numbers. */
export const numericTransformer: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | number | null) => (value === null ? null : Number(value)),
};
