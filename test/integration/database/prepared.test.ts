import { randomUUID } from 'node:crypto';
import { systemPrincipal } from '../../../src/auth/principal';
import { Database } from '../../../src/database/database';
import { TenantTransaction } from '../../../src/database/tenant-transaction';
import { freshDatabaseUrl, usesRealPostgres } from '../../helpers/app';

// PostgreSQL only: statements with parameters are named prepared statements there; PGlite runs
// every statement through TypeORM unprepared.
const onPostgres = usesRealPostgres() ? describe : describe.skip;

onPostgres('prepared statements (PostgreSQL only)', () => {
  let db: Database;
  let drop: () => Promise<void>;
  const org = randomUUID();
  beforeAll(async () => {
    const fresh = await freshDatabaseUrl();
    drop = fresh.drop;
    db = await Database.open({ url: fresh.url, poolMax: 2 });
  });
  afterAll(async () => {
    await db?.close();
    await drop?.();
  });

  const read = () =>
    TenantTransaction.run(db, systemPrincipal(org, 'test'), randomUUID(), (tx) => tx.query(`SELECT * FROM workspaces WHERE organization_id = $1`, [org]));

  it('are prepared once per connection and reused', async () => {
    const prepared = await TenantTransaction.run(db, systemPrincipal(org, 'test'), randomUUID(), async (tx) => {
      for (let i = 0; i < 3; i += 1) await tx.query(`SELECT * FROM workspaces WHERE organization_id = $1`, [org]);
      // No parameters: sent unprepared, and it sees this session's prepared statements.
      return tx.query<{ statement: string }>(`SELECT statement FROM pg_prepared_statements ORDER BY statement`);
    });
    expect(prepared.filter((p) => p.statement.includes('FROM workspaces WHERE organization_id = $1'))).toHaveLength(1);
    // So is the statement that opened the transaction (in SQL, PREPARE: it travels as `BEGIN; EXECUTE name(…)`), not parsed and planned anew each time.
    expect(prepared.filter((p) => p.statement.includes('app_open_session($1, $2::jsonb)'))).toHaveLength(1);
  });

  it('the opening prepared in SQL recovers when it is gone from a connection: at most one failed use', async () => {
    await read();
    await read();
    // Dropped behind the sender's back (it never does so itself): the next EXECUTE finds nothing.
    await db.withConnection(async (r) => {
      const names = (await r.query(`SELECT name FROM pg_prepared_statements WHERE statement LIKE 'PREPARE %'`)) as Array<{ name: string }>;
      expect(names.length).toBeGreaterThanOrEqual(1);
      for (const { name } of names) await r.query(`DEALLOCATE ${name}`);
    });
    const outcomes: string[] = [];
    for (let i = 0; i < 6; i += 1) outcomes.push(await read().then(() => 'ok', (error: { code?: string }) => String(error.code)));
    expect(outcomes.filter((o) => o !== 'ok').every((o) => o === '26000')).toBe(true);
    expect(outcomes.filter((o) => o === '26000').length).toBeLessThanOrEqual(1);
    expect(outcomes.slice(-2)).toEqual(['ok', 'ok']);
  });

  it('recover when another instance changes a table under them: at most one failed use per connection', async () => {
    await read();
    await read();
    // A migration elsewhere adds a column: the cached plans' result type no longer matches.
    await db.withConnection((r) => r.query(`ALTER TABLE workspaces ADD COLUMN added_elsewhere text`));
    const outcomes: string[] = [];
    for (let i = 0; i < 6; i += 1) outcomes.push(await read().then(() => 'ok', (error: { code?: string }) => String(error.code)));
    expect(outcomes.filter((o) => o !== 'ok').every((o) => o === '0A000')).toBe(true);
    expect(outcomes.filter((o) => o === '0A000').length).toBeLessThanOrEqual(2);
    expect(outcomes.slice(-2)).toEqual(['ok', 'ok']);
  });
});
