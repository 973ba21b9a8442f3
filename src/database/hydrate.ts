import type { DataSource, EntityTarget, ObjectLiteral } from 'typeorm';
import { statementTypes } from './timestamps';

/**
 * Turns a raw row (snake_case columns) into an entity instance using the TypeORM metadata, so that
 * hand-written batch queries (loaders with window functions) return the same objects as repositories.
 */
export function hydrator<T extends ObjectLiteral>(dataSource: DataSource, target: EntityTarget<T>): (row: Record<string, unknown>) => T {
  // Built once per data source and entity: loaders ask for theirs on every request.
  let known = hydrators.get(dataSource);
  if (!known) hydrators.set(dataSource, (known = new Map()));
  let hydrate = known.get(target);
  if (!hydrate) known.set(target, (hydrate = buildHydrator(dataSource, target) as (row: Record<string, unknown>) => ObjectLiteral));
  return hydrate as (row: Record<string, unknown>) => T;
}

const hydrators = new WeakMap<DataSource, Map<EntityTarget<ObjectLiteral>, (row: Record<string, unknown>) => ObjectLiteral>>();

function buildHydrator<T extends ObjectLiteral>(dataSource: DataSource, target: EntityTarget<T>): (row: Record<string, unknown>) => T {
  const metadata = dataSource.getMetadata(target);
  const columns = metadata.columns.map((c) => ({
    property: c.propertyName,
    column: c.databaseName,
    from: c.transformer && !Array.isArray(c.transformer) ? c.transformer.from.bind(c.transformer) : undefined,
    isDate: c.type === 'timestamptz',
    isBytes: c.type === 'bytea',
  }));
  // The loop over the columns written out once per entity: every row is read and every entity set
  // by name, the entities of a type sharing one shape, instead of a lookup by a variable key for
  // each column of each row. A column absent from the row (a lean read) is left unset.
  const steps = columns.map((c, i) => {
    const convert =
      (c.isDate ? 'if (v !== null && !(v instanceof Date)) v = new Date(v); ' : '') +
      (c.isBytes ? 'if (v instanceof Uint8Array && !Buffer.isBuffer(v)) v = Buffer.from(v); ' : '');
    return `v = row[${JSON.stringify(c.column)}]; if (v !== undefined) { ${convert}e[${JSON.stringify(c.property)}] = ${c.from ? `from[${i}](v)` : 'v'}; }`;
  });
  const fill = new Function('row', 'e', 'from', 'Buffer', `let v;\n${steps.join('\n')}\nreturn e;`) as (
    row: Record<string, unknown>,
    entity: T,
    from: ReadonlyArray<((value: unknown) => unknown) | undefined>,
    buffer: typeof Buffer,
  ) => T;
  const from = columns.map((c) => c.from as ((value: unknown) => unknown) | undefined);
  return (row) => fill(row, metadata.create() as T, from, Buffer);
}

/** The pg type of a column's text output, for the column types of entities read packed (packedRows). */
const TYPE_OIDS: Readonly<Record<string, number>> = { uuid: 2950, text: 25, boolean: 16, integer: 23, int: 23, bigint: 20, numeric: 1700, timestamptz: 1184, bytea: 17, jsonb: 3802 };

/** A column of a packed list: an entity's column by its database name, or an expression with its name, type and the property it sets. */
export type PackedColumn = string | { sql: string; name: string; type: keyof typeof TYPE_OIDS; property: string };

/**
 * A list's rows as one JSON value, an array of text arrays: `json_agg(ARRAY[c1::text, c2::text, …]
 * ORDER BY …)` (`array`, over `alias`), instead of one protocol row per item, each field of which
 * pg decodes on its own — for hundreds of rows (Q3: 750 environments), about half of Node's
 * decoding and garbage for a little more of PostgreSQL's time. Each text is the column's text
 * output, exactly what the wire carries for it, so `entities` parses it with the same type parser
 * (by the column's type) and hands it to the same transformer as `hydrator` does with a row's
 * field: the same entity, built without a row object in between. An array's elements are not
 * composite, so PostgreSQL looks up its output function once per row, not once per column
 * (`json_agg` of rows, `row_to_json`, cost it a lookup per field).
 */
export class PackedRows<T extends ObjectLiteral> {
  private readonly columns: ReadonlyArray<{
    sql: string;
    name: string;
    property: string;
    parse: ((text: string) => unknown) | null;
    from: ((value: unknown) => unknown) | null;
    isDate: boolean;
  }>;
  private readonly create: () => T;

  constructor(dataSource: DataSource, target: EntityTarget<T>, columns: readonly PackedColumn[]) {
    const metadata = dataSource.getMetadata(target);
    this.create = () => metadata.create() as T;
    this.columns = columns.map((column) => {
      const meta = typeof column === 'string' ? metadata.columns.find((c) => c.databaseName === column) : undefined;
      const { sql, name, type, property } =
        typeof column === 'string' ? { sql: column, name: column, type: meta?.type, property: meta?.propertyName ?? column } : column;
      const oid = typeof type === 'string' ? TYPE_OIDS[type] : undefined;
      if (oid === undefined) throw new Error(`PackedRows: no text parser for ${metadata.name}.${name} (${String(type)})`);
      const parser = statementTypes.getTypeParser(oid, 'text') as (text: string) => unknown;
      const transformer = meta?.transformer && !Array.isArray(meta.transformer) ? meta.transformer : undefined;
      return {
        sql,
        name,
        property,
        // Types pg leaves as text (uuid, text): no call.
        parse: oid === 2950 || oid === 25 ? null : parser,
        from: transformer ? (value: unknown) => transformer.from(value) as unknown : null,
        isDate: meta?.type === 'timestamptz',
      };
    });
  }

  private readonly arrays = new Map<string, string>();

  /** The columns of one row of `alias` (a table or subquery alias; '' for unqualified) as a text array (built once per alias). */
  array(alias = ''): string {
    let sql = this.arrays.get(alias);
    if (sql === undefined) {
      const prefix = alias ? `${alias}.` : '';
      sql = `ARRAY[${this.columns.map((c) => (c.sql === c.name ? `${prefix}${c.sql}::text` : `(${c.sql})::text`)).join(', ')}]`;
      this.arrays.set(alias, sql);
    }
    return sql;
  }

  /**
   * The packed value (null when the aggregate had no rows) as entities, each as `hydrator` builds it
   * from the same row; `known`: properties every one of them shares, which the caller knows without
   * having them packed (the ids of the row the list came along with), set before the columns.
   */
  entities(packed: unknown, known?: Partial<T>): T[] {
    if (packed === null || packed === undefined) return [];
    if (!Array.isArray(packed)) throw new TypeError('PackedRows: a packed list is a JSON array');
    const columns = this.columns;
    return packed.map((values: ReadonlyArray<string | null>) => {
      const entity = this.create() as Record<string, unknown>;
      if (known) Object.assign(entity, known);
      for (let i = 0; i < columns.length; i++) {
        const { property, parse, from, isDate } = columns[i]!;
        const text = values[i];
        let value = text === null || text === undefined ? null : parse ? parse(text) : text;
        if (isDate && value !== null && !(value instanceof Date)) value = new Date(value as string);
        entity[property] = from ? from(value) : value;
      }
      return entity as T;
    });
  }
}
