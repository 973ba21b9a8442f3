import fs from 'node:fs';
import path from 'node:path';
import { Database } from '../../../src/database/database';
import { freshDatabaseUrl } from '../../helpers/app';

/**
 * The guard of the scale-out path (SPEC §3, README "Scale-out path"): Citus is not installable
 * here, so this test keeps the schema ready for it and keeps scripts/citus/distribute.sql true to
 * the schema, on a freshly migrated database (PostgreSQL or PGlite: catalog reads only).
 */
const SCRIPT_PATH = path.join(__dirname, '../../../scripts/citus/distribute.sql');
const script = fs.readFileSync(SCRIPT_PATH, 'utf8');
/** The script without its comments: names in prose do not count. */
const code = script.replace(/--.*$/gm, '');

const referenceTables = [...code.matchAll(/create_reference_table\('(\w+)'\)/g)].map((m) => m[1]!);
const distributed = [...code.matchAll(/create_distributed_table\('(\w+)',\s*'(\w+)'(?:,\s*colocate_with\s*=>\s*'(\w+)')?\)/g)].map((m) => ({ table: m[1]!, column: m[2]!, colocateWith: m[3] ?? null }));
const namedForeignKeys = [...(/tenant_fks text\[\] := ARRAY\[([\s\S]*?)\];/.exec(code)?.[1] ?? '').matchAll(/'(\w+)'/g)].map((m) => m[1]!);
const checkBlock = /DO \$\$[\s\S]*?\$\$;/.exec(script)?.[0];

/**
 * Tables that stay local to the coordinator (the rate-limit counters: written on every request,
 * never joined; the membership scopes' marks: a transaction's own rows, gone by its COMMIT).
 */
const LOCAL_TABLES = ['membership_scopes_due', 'migrations', 'rate_limit_counters'];

interface ForeignKey {
  name: string;
  table: string;
  referenced: string;
  /** Local column → referenced column, in key order. */
  pairs: Array<[string, string]>;
}

let db: Database;
let drop: () => Promise<void>;
let tables: string[];
let tenantTables: string[];
let foreignKeys: ForeignKey[];

const query = <T>(sql: string, params: unknown[] = []): Promise<T[]> => db.withConnection((runner) => runner.query(sql, params));

beforeAll(async () => {
  const fresh = await freshDatabaseUrl();
  drop = fresh.drop;
  db = await Database.open({ url: fresh.url, poolMax: 2 });
  const rows = await query<{ name: string; tenant: boolean }>(
    `SELECT c.relname AS name, EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped) AS tenant
     FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') ORDER BY 1`,
  );
  tables = rows.map((r) => r.name);
  tenantTables = rows.filter((r) => r.tenant).map((r) => r.name);
  const fks = await query<{ name: string; table: string; referenced: string; local: string[]; remote: string[] }>(
    `SELECT c.conname AS name, c.conrelid::regclass::text AS table, c.confrelid::regclass::text AS referenced,
            (SELECT array_agg(a.attname ORDER BY k.i) FROM unnest(c.conkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n) AS local,
            (SELECT array_agg(a.attname ORDER BY k.i) FROM unnest(c.confkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n) AS remote
     FROM pg_constraint c WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace ORDER BY 1`,
  );
  // pg returns name[] as a JS array; PGlite may return the array literal text.
  const list = (value: string[] | string): string[] => (Array.isArray(value) ? value : value.replace(/^\{|\}$/g, '').split(','));
  foreignKeys = fks.map((fk) => ({ name: fk.name, table: fk.table, referenced: fk.referenced, pairs: list(fk.local).map((col, i) => [col, list(fk.remote)[i]!] as [string, string]) }));
});

afterAll(async () => {
  await db?.close();
  await drop?.();
});

describe('the schema is ready for Citus (tenant tables co-located on organization_id)', () => {
  it('reads the script: it distributes some tables, references others, and names the foreign keys between tenant tables', () => {
    expect(distributed.length).toBeGreaterThan(0);
    expect(referenceTables.length).toBeGreaterThan(0);
    expect(namedForeignKeys.length).toBeGreaterThan(0);
    expect(checkBlock).toBeDefined();
  });

  it('every table the script names exists; every tenant table is distributed on organization_id, every other table (but migrations) is a reference table', () => {
    const named = [...referenceTables, ...distributed.map((d) => d.table)];
    expect(named.filter((t) => !tables.includes(t))).toEqual([]);
    expect(new Set(named).size).toBe(named.length);
    expect(distributed.map((d) => d.table).sort()).toEqual([...tenantTables].sort());
    expect(distributed.filter((d) => d.column !== 'organization_id')).toEqual([]);
    expect([...referenceTables, ...LOCAL_TABLES].sort()).toEqual(tables.filter((t) => !tenantTables.includes(t)).sort());
  });

  it('puts every distributed table in one co-location group, each after the tables it references', () => {
    const [first, ...rest] = distributed;
    expect(first!.colocateWith).toBeNull();
    expect(rest.filter((d) => d.colocateWith !== first!.table)).toEqual([]);
    const order = [...referenceTables, ...distributed.map((d) => d.table)];
    const outOfOrder = foreignKeys.filter((fk) => fk.table !== fk.referenced && order.includes(fk.table) && order.indexOf(fk.referenced) > order.indexOf(fk.table));
    expect(outOfOrder.map((fk) => fk.name)).toEqual([]);
  });

  it("keeps organization_id in every tenant table's primary key, unique constraints and unique indexes", async () => {
    const keys = await query<{ table: string; index: string; columns: string[] | string }>(
      `SELECT i.indrelid::regclass::text AS table, i.indexrelid::regclass::text AS index,
              (SELECT array_agg(a.attname) FROM unnest(i.indkey) k(n) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n) AS columns
       FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
       WHERE c.relnamespace = 'public'::regnamespace AND i.indisunique AND c.relname = ANY($1::text[])`,
      [tenantTables],
    );
    // Every tenant table has its primary key among them.
    expect(new Set(keys.map((k) => k.table))).toEqual(new Set(tenantTables));
    const without = keys.filter((k) => !(Array.isArray(k.columns) ? k.columns : String(k.columns)).includes('organization_id'));
    expect(without.map((k) => `${k.table}.${k.index}`)).toEqual([]);
  });

  it('pairs organization_id with organization_id in every foreign key between tenant tables, and the script names exactly those', () => {
    const betweenTenants = foreignKeys.filter((fk) => tenantTables.includes(fk.table) && tenantTables.includes(fk.referenced));
    expect(betweenTenants.length).toBeGreaterThan(0);
    const unpaired = betweenTenants.filter((fk) => !fk.pairs.some(([local, remote]) => local === 'organization_id' && remote === 'organization_id'));
    expect(unpaired.map((fk) => fk.name)).toEqual([]);
    expect([...namedForeignKeys].sort()).toEqual(betweenTenants.map((fk) => fk.name).sort());
  });

  it('has no foreign key from a global table to a tenant table (Citus cannot reference a distributed table from a reference table)', () => {
    const backwards = foreignKeys.filter((fk) => !tenantTables.includes(fk.table) && tenantTables.includes(fk.referenced));
    expect(backwards.map((fk) => fk.name)).toEqual([]);
  });

  it("runs the script's own check (step 1) on the migrated schema, and that check refuses a foreign key that does not exist", async () => {
    await query(checkBlock!);
    const broken = checkBlock!.replace(`'${namedForeignKeys[0]}'`, `'no_such_fkey'`);
    await expect(query(broken)).rejects.toThrow(/foreign key no_such_fkey is missing/);
  });
});
