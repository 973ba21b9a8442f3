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

/** Days from 1970-01-01 to a date of the proleptic Gregorian calendar (month 1–12), in integer arithmetic. */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  return era * 146_097 + yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear - 719_468;
}

/**
 * timestamptz in PostgreSQL's text form (`2026-12-01 14:50:44.123+00`, `…+05:30`) to a Date,
 * without the general parser's regular expression nor Date.UTC: a list of a thousand rows carries
 * thousands of them. Milliseconds are the first three digits of the fraction (as pg's parser
 * keeps them). Anything unusual (years before 1000, BC, infinity, a field out of range) goes to
 * pg's own parser.
 */
export function parseTimestamptz(value: string): Date | string | null {
  if (value.length < 22 || value.charCodeAt(4) !== 45 || value.charCodeAt(10) !== 32 || value.charCodeAt(19) === 32) return parseGeneric(value);
  let i = 19;
  let ms = 0;
  if (value.charCodeAt(19) === 46) {
    let scale = 100;
    i = 20;
    for (let c = value.charCodeAt(i) - 48; c >= 0 && c <= 9; c = value.charCodeAt(i) - 48) {
      ms += c * scale;
      scale = scale >= 10 ? scale / 10 : 0;
      i += 1;
    }
  }
  const sign = value.charCodeAt(i);
  if (sign !== 43 && sign !== 45) return parseGeneric(value);
  const rest = value.length - i - 1;
  if (rest !== 2 && rest !== 5) return parseGeneric(value);
  const year = digits(value, 0, 4);
  const month = digits(value, 5, 7);
  const day = digits(value, 8, 10);
  const hours = digits(value, 11, 13);
  const minutes = digits(value, 14, 16);
  const seconds = digits(value, 17, 19);
  const offsetMinutes = (digits(value, i + 1, i + 3) * 60 + (rest === 5 ? digits(value, i + 4, i + 6) : 0)) * (sign === 43 ? 1 : -1);
  // NaN (a non-digit) fails every comparison: to pg's parser, as does anything out of range.
  if (!(year >= 1000 && month >= 1 && month <= 12 && day >= 1 && day <= 31 && hours <= 23 && minutes <= 59 && seconds <= 59 && offsetMinutes === offsetMinutes)) return parseGeneric(value);
  const time = ((daysFromCivil(year, month, day) * 24 + hours) * 60 + minutes - offsetMinutes) * 60_000 + seconds * 1000 + ms;
  return new Date(time);
}

/** The type parsers of the service's own statements on PostgreSQL: pg's, with the fast timestamptz. */
export const statementTypes = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === 1184 && format !== 'binary' ? parseTimestamptz : (types.getTypeParser as (oid: number, format?: string) => unknown)(oid, format ?? 'text'),
};
