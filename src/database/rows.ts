import { Result, type FieldDef, type types } from 'pg';
import { setBounded } from '../common/bounded-map';

type Parser = (text: string) => unknown;
interface TypeParsers {
  getTypeParser(oid: number, format?: string): unknown;
}

/** How the rows of one row description are built: each field's parser and an object literal of its names. */
interface RowShape {
  names: string[];
  types: number[];
  parsers: Parser[];
  build: ((values: ReadonlyArray<string | null>, parsers: Parser[]) => Record<string, unknown>) | null;
}

/** The last row shape of each statement text (a few hundred distinct statements). */
const shapes = new Map<string, RowShape>();
const MAX_SHAPES = 2_000;

/**
 * A statement's result whose rows are built by one function per row description: an object
 * literal with the row's column names, its values decoded by the same type parsers pg uses.
 *
 * pg's Result builds, for every row description (one per statement executed), a template object
 * one property at a time on a null-prototype object, then copies it with a spread for every row
 * and stores each value by name: about 8 µs for an organization's 21 columns before the first row,
 * and rows whose stores go through a lookup by name. Here the description is checked against the
 * one the same statement text had last time (names and types, a loop) and each row is one object
 * literal. The rows are the same plain objects with the same values: text-format fields, names in
 * column order (a later column of the same name wins, as with pg). A description this does not
 * handle (binary fields, a column named `__proto__`) is left to pg's own code. The service's
 * connections share one set of type parsers (the pool's `types`), so a shape's parsers hold for
 * every connection.
 */
export class StatementResult extends Result {
  private shape: RowShape | null = null;

  constructor(private readonly text: string) {
    super(undefined as unknown as string, undefined as unknown as typeof types);
  }

  addFields(fields: FieldDef[]): void {
    const shape = shapeOf(this.text, fields, (this as unknown as { _types: TypeParsers })._types);
    this.shape = shape.build ? shape : null;
    if (this.shape) this.fields = fields;
    else (Result.prototype as unknown as { addFields(f: FieldDef[]): void }).addFields.call(this, fields);
  }

  parseRow(values: ReadonlyArray<string | null>): Record<string, unknown> {
    const shape = this.shape;
    if (!shape) return (Result.prototype as unknown as { parseRow(v: unknown): Record<string, unknown> }).parseRow.call(this, values);
    return shape.build!(values, shape.parsers);
  }
}

function shapeOf(text: string, fields: FieldDef[], types: TypeParsers): RowShape {
  let shape = shapes.get(text);
  if (shape === undefined || !describes(shape, fields)) {
    shape = buildShape(fields, types);
    setBounded(shapes, text, shape, MAX_SHAPES);
  }
  return shape;
}

function describes(shape: RowShape, fields: FieldDef[]): boolean {
  if (shape.names.length !== fields.length) return false;
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    if (field.name !== shape.names[i] || field.dataTypeID !== shape.types[i] || (field.format as string) !== 'text') return false;
  }
  return true;
}

function buildShape(fields: FieldDef[], types: TypeParsers): RowShape {
  const names = fields.map((f) => f.name);
  const shape: RowShape = { names, types: fields.map((f) => f.dataTypeID), parsers: fields.map((f) => types.getTypeParser(f.dataTypeID, 'text') as Parser), build: null };
  if (fields.some((f) => (f.format as string) === 'binary' || f.name === '__proto__')) return shape;
  const properties = names.map((name, i) => `${JSON.stringify(name)}: v[${i}] === null ? null : p[${i}](v[${i}])`);
  // One object literal per row description: the rows of a statement share one hidden class.
  shape.build = new Function('v', 'p', `return { ${properties.join(', ')} };`) as RowShape['build'];
  return shape;
}
