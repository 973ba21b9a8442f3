import { types } from 'pg';

const parseGeneric = types.getTypeParser(1184, 'text') as (value: string) => Date | string | null;
const digits = (v: string, from: number, to: number): number => {
  let n = 0;
  for (let i = from; i < to; i += 1) {
    const c = v.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return NaN;
    n = n * 10 + c;
  }
  return n;
};

/**
 * timestamptz in PostgreSQL's text form (`2026-12-01 14:50:44.123+00`, `…+05:30`) to a Date,
 * without the general parser's regular expression: a list of a thousand rows carries thousands
 * of them. Anything unusual (years before 1000, BC, infinity) goes to pg's own parser.
 */
export function parseTimestamptz(value: string): Date | string | null {
  if (value.length < 22 || value.charCodeAt(4) !== 45 || value.charCodeAt(10) !== 32 || value.charCodeAt(19) === 32) return parseGeneric(value);
  let i = 19;
  let ms = 0;
  if (value.charCodeAt(19) === 46) {
    let j = 20;
    while (j < value.length && value.charCodeAt(j) >= 48 && value.charCodeAt(j) <= 57) j += 1;
    ms = digits(`${value.slice(20, j)}00`, 0, 3);
    i = j;
  }
  const sign = value.charCodeAt(i);
  if (sign !== 43 && sign !== 45) return parseGeneric(value);
  const rest = value.length - i - 1;
  if (rest !== 2 && rest !== 5) return parseGeneric(value);
  const year = digits(value, 0, 4);
  const offsetMinutes = (digits(value, i + 1, i + 3) * 60 + (rest === 5 ? digits(value, i + 4, i + 6) : 0)) * (sign === 43 ? 1 : -1);
  const time =
    Date.UTC(year, digits(value, 5, 7) - 1, digits(value, 8, 10), digits(value, 11, 13), digits(value, 14, 16), digits(value, 17, 19), ms) - offsetMinutes * 60_000;
  if (year < 1000 || Number.isNaN(time)) return parseGeneric(value);
  return new Date(time);
}

/** The type parsers of the service's own statements on PostgreSQL: pg's, with the fast timestamptz. */
export const statementTypes = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === 1184 && format !== 'binary' ? parseTimestamptz : (types.getTypeParser as (oid: number, format?: string) => unknown)(oid, format ?? 'text'),
};
