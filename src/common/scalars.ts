import { GraphQLScalarType } from 'graphql';
import { DateTimeResolver, JSONObjectResolver } from 'graphql-scalars';
import type { ValueTransformer } from 'typeorm';

/** ISO-8601 in UTC with milliseconds (`2026-01-02T03:04:05.678Z`). */
export const DateTimeScalar = DateTimeResolver;
/** What a JSONObject input that is not a JSON object parses to; refused by the service on its field. */
export class NotAJsonObject {}

/**
 * graphql-scalars' JSONObject, except that parsing never throws: graphql-js would put the
 * rejected value into the error message, and a JSONObject input may hold credentials. The
 * service refuses the marker with BAD_USER_INPUT naming the field, never the value.
 */
export const JSONObjectScalar = new GraphQLScalarType({
  name: 'JSONObject',
  description: JSONObjectResolver.description,
  specifiedByURL: JSONObjectResolver.specifiedByURL,
  serialize: (value) => JSONObjectResolver.serialize(value),
  parseValue: (value) => {
    try {
      return JSONObjectResolver.parseValue(value);
    } catch {
      return new NotAJsonObject();
    }
  },
  parseLiteral: (ast, variables) => {
    try {
      return JSONObjectResolver.parseLiteral(ast, variables);
    } catch {
      return new NotAJsonObject();
    }
  },
});

/** numeric columns come back as strings from pg; the API speaks numbers. */
export const numericTransformer: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | number | null) => (value === null ? null : Number(value)),
};
