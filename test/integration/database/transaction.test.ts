import { randomUUID } from 'node:crypto';
import { Database } from '../../../src/database/database';
import { type Principal, systemPrincipal } from '../../../src/auth/principal';
import { TenantTransaction, TransactionEndedError } from '../../../src/database/tenant-transaction';
import { freshDatabaseUrl, usesRealPostgres } from '../../helpers/app';
import { socketWritesDuring } from '../../helpers/socket-writes';

let db: Database;
let drop: () => Promise<void>;
const org = randomUUID();

beforeAll(async () => {
  const fresh = await freshDatabaseUrl();
  drop = fresh.drop;
  db = await Database.open({ url: fresh.url });
  // A COMMIT that fails while the session lives on: a deferred constraint trigger (any deferrable
  // foreign key, or SERIALIZABLE isolation, behaves the same).
  await db.withConnection(async (r) => {
    await r.query(`CREATE TABLE deferred_check (x int)`);
    await r.query(`CREATE FUNCTION deferred_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'deferred check failed'; END $$`);
    await r.query(`CREATE CONSTRAINT TRIGGER deferred_t AFTER INSERT ON deferred_check DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION deferred_fail()`);
    await r.query(`GRANT SELECT, INSERT ON deferred_check TO tenant_service_app`);
    await r.query(`CREATE TABLE ahead_marks (tag text)`);
  });
});
afterAll(async () => {
  await db?.close();
  await drop?.();
});

const scoped = (id = org) => new TenantTransaction(db, systemPrincipal(id, 'test'), randomUUID());
const exists = async (id = org) => {
  const tx = scoped(id);
  const rows = await tx.query(`SELECT 1 FROM organizations WHERE id = $1`, [id]);
  await tx.finish();
  return rows.length === 1;
};

describe('the request transaction', () => {
  it('refuses to report success when a statement outside any savepoint aborted it after a mutation wrote', async () => {
    const tx = scoped();
    await tx.savepoint(() => tx.query(`INSERT INTO organizations (id, name, slug) VALUES ($1, 'Lost', $2)`, [org, `lost-${Date.now()}`]));
    await expect(tx.query(`SELECT 1 / 0`)).rejects.toThrow();
    await expect(tx.finish()).rejects.toThrow(/aborted after a mutation wrote/);
    expect(await exists()).toBe(false);
  });

  it('keeps a mutation when a failure inside a later savepoint was rolled back to it', async () => {
    const tx = scoped();
    await tx.savepoint(() => tx.query(`INSERT INTO organizations (id, name, slug) VALUES ($1, 'Kept', $2)`, [org, `kept-${Date.now()}`]));
    await expect(tx.savepoint(() => tx.query(`SELECT 1 / 0`))).rejects.toThrow();
    await tx.finish();
    expect(await exists()).toBe(true);
  });

  it('ends a read-only request quietly when a read statement failed', async () => {
    const tx = scoped();
    await expect(tx.query(`SELECT 1 / 0`)).rejects.toThrow();
    await expect(tx.finish()).resolves.toBeUndefined();
  });

  it('refuses a statement sent after the end at once, and never runs it outside the transaction', async () => {
    const late = randomUUID();
    const tx = scoped(late);
    await tx.query(`SELECT 1`);
    const finishing = tx.finish();
    // Sent while COMMIT is under way (a resolver still running after the response was decided).
    await expect(tx.query(`INSERT INTO organizations (id, name, slug) VALUES ($1, 'Late', $2)`, [late, `late-${Date.now()}`])).rejects.toThrow(TransactionEndedError);
    await finishing;
    await expect(tx.query(`SELECT 1`)).rejects.toThrow(TransactionEndedError);
    expect(await exists(late)).toBe(false);
  });

  it('runs statements queued before the end ahead of the COMMIT', async () => {
    const queued = randomUUID();
    const tx = scoped(queued);
    const insert = tx.query(`INSERT INTO organizations (id, name, slug) VALUES ($1, 'Queued', $2)`, [queued, `queued-${Date.now()}`]);
    await tx.finish();
    await expect(insert).resolves.toEqual([]);
    expect(await exists(queued)).toBe(true);
  });

  it('rolls the in-memory scope back with a failed savepoint, as the database does with its settings', async () => {
    const other = randomUUID();
    const tx = new TenantTransaction(db, { kind: 'anonymous' }, randomUUID());
    const session = await tx.open();
    await expect(
      tx.savepoint(async () => {
        await tx.widen(other, 'owner');
        expect(session.roles.get(other)).toBe('owner');
        expect(await tx.query(`SELECT current_setting('app.org_ids') AS s`)).toEqual([{ s: other }]);
        throw new Error('the mutation failed');
      }),
    ).rejects.toThrow('the mutation failed');
    expect(session.roles.has(other)).toBe(false);
    expect(await tx.query(`SELECT current_setting('app.org_ids') AS s`)).toEqual([{ s: '' }]);
    await tx.finish();
  });

  it('keeps the scope across a mid-unit commit (a mutation commits before its selection set resolves)', async () => {
    const tx = new TenantTransaction(db, { kind: 'anonymous' }, randomUUID());
    await tx.open();
    const id = randomUUID();
    await tx.widen(id, 'owner');
    await tx.commit();
    expect(await tx.query(`SELECT current_setting('app.org_ids') AS s, current_user AS u`)).toEqual([{ s: id, u: 'tenant_service_app' }]);
    await tx.finish();
  });

  it('after a failed mid-unit COMMIT, begins anew as the service role with the scope last committed', async () => {
    const tx = new TenantTransaction(db, { kind: 'anonymous' }, randomUUID());
    const session = await tx.open();
    const kept = randomUUID();
    await tx.widen(kept, 'owner');
    await tx.commit();
    const lost = randomUUID();
    await tx.savepoint(async () => {
      await tx.widen(lost, 'owner');
      await tx.query(`INSERT INTO deferred_check VALUES (1)`);
    });
    await expect(tx.commit()).rejects.toThrow(/deferred check failed/);
    expect([...session.roles.keys()]).toEqual([kept]);
    const [row] = await tx.query<{ who: string; scope: string; in_tx: boolean; rows: number }>(
      `SELECT current_user AS who, current_setting('app.org_ids', true) AS scope, (now() <> statement_timestamp()) AS in_tx,
              (SELECT count(*)::int FROM deferred_check) AS rows`,
    );
    expect(row).toEqual({ who: 'tenant_service_app', scope: kept, in_tx: expect.any(Boolean), rows: 0 });
    await tx.finish();
  });

  it('does not let a failed read poison the next mutation of the same unit of work', async () => {
    const id = randomUUID();
    const tx = scoped(id);
    await expect(tx.query(`SELECT 1 / 0`)).rejects.toThrow();
    await tx.savepoint(() => tx.query(`INSERT INTO organizations (id, name, slug) VALUES ($1, 'After a failed read', $2)`, [id, `after-${Date.now()}`]));
    await tx.commit();
    await tx.finish();
    expect(await exists(id)).toBe(true);
  });
});

describe('a statement sent ahead of BEGIN (TenantTransaction.ahead)', () => {
  const onPostgres = usesRealPostgres() ? it : it.skip;
  const marks = async (tag: string) => db.withConnection(async (r) => (await r.query(`SELECT count(*)::int AS n FROM ahead_marks WHERE tag = $1`, [tag]))[0].n as number);

  onPostgres('runs in a transaction of its own, before the unit of work’s, and stays committed when the unit of work rolls back', async () => {
    const tx = scoped();
    const tag = randomUUID();
    const ahead = tx.ahead<{ xid: string }>(`WITH mark AS (INSERT INTO ahead_marks VALUES ($1)) SELECT pg_current_xact_id()::text AS xid`, [tag]);
    expect(ahead).not.toBeNull();
    const [inside] = await tx.query<{ xid: string; seen: number }>(`SELECT pg_current_xact_id()::text AS xid, (SELECT count(*)::int FROM organizations WHERE id = $1) AS seen`, [org]);
    const [before] = await ahead!;
    expect(before!.xid).not.toBe(inside!.xid);
    await tx.finish(false);
    expect(await marks(tag)).toBe(1);
  });

  onPostgres('a failing one leaves the unit of work unharmed; its error goes to its caller alone', async () => {
    const tx = scoped();
    const ahead = tx.ahead(`SELECT 1 / $1::int AS x`, [0])!.then(
      () => null,
      (error: Error) => error.message,
    );
    const rows = await tx.query<{ y: number }>(`SELECT $1::int AS y`, [2]);
    expect(await ahead).toBe('division by zero');
    expect(rows).toEqual([{ y: 2 }]);
    await expect(tx.finish()).resolves.toBeUndefined();
  });

  it('only before the unit of work begins, and only where the database pipelines; one that never began settles it with an error', async () => {
    const opened = scoped();
    await opened.query(`SELECT $1::int AS x`, [1]);
    expect(opened.ahead(`SELECT $1::int AS x`, [1])).toBeNull();
    await opened.finish();

    const unopened = scoped();
    const ahead = unopened.ahead(`SELECT $1::int AS x`, [1]);
    if (!usesRealPostgres()) {
      // The embedded database has one connection and no pipeline: callers send such statements on their own.
      expect(ahead).toBeNull();
      return;
    }
    expect(unopened.ahead(`SELECT $1::int AS x`, [2])).toBeNull();
    await unopened.finish();
    await expect(ahead).rejects.toThrow(TransactionEndedError);
  });

  it('never once opening has started, even while the connection is still awaited, nor after it failed: nothing is left waiting', async () => {
    // A database whose connections are slow to come, then never come.
    let refuse!: (error: Error) => void;
    const slow = { pipelines: true, lease: () => new Promise((_resolve, reject) => (refuse = reject)) } as unknown as Database;
    const waiting = new TenantTransaction(slow, systemPrincipal(org, 'test'), randomUUID());
    const early = waiting.ahead(`SELECT $1::int AS x`, [1]);
    const opening = waiting.open();
    await new Promise((r) => setImmediate(r));
    expect(waiting.ahead(`SELECT $1::int AS x`, [2])).toBeNull();
    refuse(new Error('no connection'));
    await expect(opening).rejects.toThrow('no connection');
    // The one registered in time is settled with the reason the transaction could not open.
    await expect(early).rejects.toThrow('no connection');
    expect(waiting.ahead(`SELECT $1::int AS x`, [3])).toBeNull();
    await waiting.finish();
  });
});

describe('statements queued together (pipelined on PostgreSQL)', () => {
  const onPostgres = usesRealPostgres() ? it : it.skip;

  it('are answered in the order sent, each with its own rows; one that fails aborts those behind it, as one after another would', async () => {
    const tx = scoped();
    const [a, b, c] = await Promise.allSettled([
      tx.query<{ n: number }>(`SELECT $1::int AS n`, [1]),
      tx.query<{ n: number }>(`SELECT 1 / $1::int AS n`, [0]),
      tx.query<{ n: number }>(`SELECT $1::int AS n`, [3]),
    ]);
    expect(a).toEqual({ status: 'fulfilled', value: [{ n: 1 }] });
    expect(b.status === 'rejected' && String(b.reason)).toMatch(/division by zero/);
    expect(c.status === 'rejected' && (c.reason as { code?: string }).code).toBe('25P02');
    await expect(tx.finish()).resolves.toBeUndefined();
  });

  it('run in the order of the calls, around a savepoint too; a unit of work rolled back keeps none of it', async () => {
    const id = randomUUID();
    const tx = scoped(id);
    const count = () => tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM organizations WHERE id = $1`, [id]);
    const write = tx.savepoint(() => tx.query(`INSERT INTO organizations (id, name, slug) VALUES ($1, 'Ordered', $2)`, [id, `ordered-${Date.now()}`]));
    // Called after the savepoint began but queued before its INSERT: it runs first and sees nothing.
    const before = count();
    await write;
    const [after, again] = await Promise.all([count(), count()]);
    expect([await before, after, again]).toEqual([[{ n: 0 }], [{ n: 1 }], [{ n: 1 }]]);
    await tx.finish(false);
    expect(await exists(id)).toBe(false);
  });

  onPostgres('leave in one socket write when handed over in the same turn of the event loop', async () => {
    const tx = scoped();
    await tx.query(`SELECT $1::int AS n`, [0]);
    const writes = await socketWritesDuring(async () => {
      const answers = await Promise.all([1, 2, 3].map((n) => tx.query<{ n: number }>(`SELECT $1::int AS n`, [n])));
      expect(answers).toEqual([[{ n: 1 }], [{ n: 2 }], [{ n: 3 }]]);
    });
    expect(writes).toBe(1);
    await tx.finish();
  });

  const user = (subject = `acc|${randomUUID()}`): Principal => ({
    kind: 'user',
    identity: { subject, email: `${randomUUID()}@example.test`, emailVerified: true, name: null, picture: null, mfa: false, authenticatedAt: null },
  });
  /** Socket writes while `fn` runs; a pooled connection is idle first, so leasing writes nothing. */
  const writesDuring = async (fn: () => Promise<unknown>): Promise<number> => {
    await exists();
    return socketWritesDuring(fn);
  };

  onPostgres('a user’s read that opens the unit of work leaves with BEGIN in one socket write, and runs inside it, as the service role with the user set', async () => {
    const tx = new TenantTransaction(db, user(), randomUUID());
    let rows: unknown[] = [];
    const writes = await writesDuring(async () => {
      rows = await tx.read(`SELECT current_user AS role, current_setting('app.user_id') <> '' AS provisioned, $1::int AS n`, [7]);
    });
    expect(rows).toEqual([{ role: 'tenant_service_app', provisioned: true, n: 7 }]);
    expect(writes).toBe(1);
    expect((await tx.open()).viewer).toMatchObject({ created: true });
    await tx.finish();
  });

  onPostgres('the service’s (and an API key’s) first read waits for the opening’s answer: nothing runs before the principal is authenticated', async () => {
    const tx = scoped();
    const writes = await writesDuring(() => tx.read(`SELECT $1::int AS n`, [1]));
    expect(writes).toBe(2);
    await tx.finish();
  });

  it('when a user’s opening fails, the read behind it fails with the opening’s error, and so does every later use', async () => {
    // PostgreSQL's text cannot hold NUL: the session's principal (jsonb) is refused, the opening fails.
    const broken = new TenantTransaction(db, user('nul\u0000subject'), randomUUID());
    await expect(broken.read(`SELECT $1::int AS n`, [1])).rejects.toThrow(/unsupported Unicode escape sequence|invalid/);
    await expect(broken.open()).rejects.toThrow(/unsupported Unicode escape sequence|invalid/);
    await expect(broken.query(`SELECT $1::int AS n`, [2])).rejects.toThrow(/unsupported Unicode escape sequence|invalid/);
    await broken.finish();
    // The connection went back clean: the next unit of work is unharmed.
    const tx = scoped();
    expect(await tx.query<{ n: number }>(`SELECT $1::int AS n`, [3])).toEqual([{ n: 3 }]);
    await tx.finish();
  });
});
