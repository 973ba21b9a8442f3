import { Result as PgResult, type FieldDef } from 'pg';
import { StatementResult } from '../../src/database/rows';
import { statementTypes } from '../../src/database/timestamps';

/**
 * StatementResult builds a statement's rows itself (src/database/rows.ts): every row must be what
 * pg's own Result gives for the same row description and values — the same plain object, the same
 * keys in the same order, the same decoded values — whatever the statement read before.
 */
const field = (name: string, dataTypeID: number, format = 'text'): FieldDef =>
  ({ name, tableID: 0, columnID: 0, dataTypeID, dataTypeSize: -1, dataTypeModifier: -1, format }) as FieldDef;

interface Decoder {
  addFields(fields: FieldDef[]): void;
  parseRow(values: ReadonlyArray<string | null>): Record<string, unknown>;
  fields: FieldDef[];
}

function pgRows(fields: FieldDef[], rows: Array<Array<string | null>>): Array<Record<string, unknown>> {
  const result = new PgResult(undefined as unknown as string, statementTypes as never) as unknown as Decoder;
  result.addFields(fields);
  return rows.map((values) => result.parseRow(values));
}

function ownRows(text: string, fields: FieldDef[], rows: Array<Array<string | null>>): Array<Record<string, unknown>> {
  const result = new StatementResult(text) as unknown as Decoder & { _types: unknown };
  // What the client does on submit: its type parsers.
  result._types = statementTypes;
  result.addFields(fields);
  expect(result.fields).toBe(fields);
  return rows.map((values) => result.parseRow(values));
}

const same = (a: Array<Record<string, unknown>>, b: Array<Record<string, unknown>>) => {
  expect(b).toEqual(a);
  expect(b.map((row) => Object.keys(row))).toEqual(a.map((row) => Object.keys(row)));
  for (const row of b) expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
};

const FIELDS = [
  field('id', 2950),
  field('name', 25),
  field('count', 23),
  field('big', 20),
  field('active', 16),
  field('settings', 3802),
  field('created_at', 1184),
  field('amount', 1700),
  field('tags', 1009),
  field('weird "name"\\', 25),
];
const ROWS: Array<Array<string | null>> = [
  ['5c1b2f4e-1111-4444-8888-123456789abc', 'Acme', '42', '9007199254740993', 't', '{"a": [1, 2], "b": null}', '2026-12-01 14:50:44.123+00', '12.50', '{x,"y z"}', 'q'],
  [null, null, null, null, null, null, null, null, null, null],
  ['00000000-0000-0000-0000-000000000000', '', '-1', '0', 'f', '[]', '2024-02-29 00:00:00.5+05:30', '0', '{}', ''],
];

describe('rows decoded by StatementResult', () => {
  it('are exactly pg’s rows for the same description: values, key order and prototype, nulls included', () => {
    same(pgRows(FIELDS, ROWS), ownRows('SELECT test 1', FIELDS, ROWS));
    // Again for the same statement (its remembered shape).
    same(pgRows(FIELDS, ROWS), ownRows('SELECT test 1', FIELDS, ROWS));
  });

  it('a later column of the same name wins, as with pg', () => {
    const fields = [field('id', 2950), field('n', 23), field('id', 25)];
    const rows = [['5c1b2f4e-1111-4444-8888-123456789abc', '1', 'other']];
    same(pgRows(fields, rows), ownRows('SELECT test 2', fields, rows));
    expect(ownRows('SELECT test 2', fields, rows)[0]!.id).toBe('other');
  });

  it('a statement whose description changed (another column, another type) is decoded by its new description', () => {
    const before = [field('id', 2950), field('n', 23)];
    const renamed = [field('id', 2950), field('m', 23)];
    const retyped = [field('id', 2950), field('n', 25)];
    const longer = [field('id', 2950), field('n', 23), field('extra', 16)];
    const id = '5c1b2f4e-1111-4444-8888-123456789abc';
    expect(ownRows('SELECT test 3', before, [[id, '7']])).toEqual([{ id, n: 7 }]);
    expect(ownRows('SELECT test 3', renamed, [[id, '7']])).toEqual([{ id, m: 7 }]);
    expect(ownRows('SELECT test 3', retyped, [[id, '7']])).toEqual([{ id, n: '7' }]);
    expect(ownRows('SELECT test 3', longer, [[id, '7', 't']])).toEqual([{ id, n: 7, extra: true }]);
    expect(ownRows('SELECT test 3', before, [[id, '8']])).toEqual([{ id, n: 8 }]);
  });

  it('a column named __proto__ is an own property, as with pg (left to pg’s code)', () => {
    const fields = [field('__proto__', 25), field('x', 23)];
    const rows = [['p', '1']];
    const own = ownRows('SELECT test 4', fields, rows);
    same(pgRows(fields, rows), own);
    expect(Object.prototype.hasOwnProperty.call(own[0], '__proto__')).toBe(true);
  });
});
