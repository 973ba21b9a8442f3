import { Client } from 'pg';
import { codes, type GqlResult, ok, startTestApp, type TestApp, usesRealPostgres } from '../../helpers/app';
import { sideConnection, untilWaitingOnLocks } from '../../helpers/db';
import { createOrganization, uniqueEmail } from '../../helpers/factories';

/**
 * SPEC §8: `statement_timeout` and `idle_in_transaction_session_timeout` on the service's
 * sessions, and a pool that fails fast when exhausted. A statement is kept waiting the way it
 * happens in production: on a row lock held by another session (this test's own connection).
 *
 * PostgreSQL only: the embedded database has a single connection, no pool and no other session
 * to hold a lock (its own bounded wait is tested in test/integration/database/connection-wait).
 */
const onPostgres = usesRealPostgres() ? describe : describe.skip;

const UPDATE = `mutation($id: ID!, $name: String!) { updateOrganization(id: $id, input: { name: $name }) { id name } }`;

/** Holds the organization's row lock (as a concurrent writer would) until release() is called. */
async function holdRowLock(client: Client, organizationId: string): Promise<{ release: () => Promise<void> }> {
  await client.query('BEGIN');
  await client.query('SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE', [organizationId]);
  return { release: async () => void (await client.query('ROLLBACK')) };
}

const timed = async <T>(work: () => Promise<T>): Promise<{ result: T; ms: number }> => {
  const started = Date.now();
  const result = await work();
  return { result, ms: Date.now() - started };
};

onPostgres('database session limits (PostgreSQL)', () => {
  describe('statement_timeout and idle_in_transaction_session_timeout', () => {
    let app: TestApp;
    let side: Client;
    beforeAll(async () => {
      app = await startTestApp({ env: { DB_STATEMENT_TIMEOUT_MS: '1000', DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: '800' } });
      side = await sideConnection(app, 'timeouts-test');
    });
    afterAll(async () => {
      await side?.end();
      await app?.close();
    });

    it('are set on the service sessions from DB_STATEMENT_TIMEOUT_MS and DB_IDLE_IN_TRANSACTION_TIMEOUT_MS', async () => {
      const shown = await app.db.withConnection(async (runner) => ({
        statement: (await runner.query('SHOW statement_timeout'))[0].statement_timeout,
        idle: (await runner.query('SHOW idle_in_transaction_session_timeout'))[0].idle_in_transaction_session_timeout,
      }));
      expect(shown).toEqual({ statement: '1s', idle: '800ms' });
    });

    it('a statement kept waiting past statement_timeout fails the request with a masked error, changes nothing, and the service goes on', async () => {
      const owner = uniqueEmail('stmt');
      const org = await createOrganization(app, owner, { name: 'Before' });
      const lock = await holdRowLock(side, org.id);
      let failed: GqlResult;
      let ms: number;
      try {
        ({ result: failed, ms } = await timed(() => app.gql(UPDATE, { id: org.id, name: 'During' }, { as: owner })));
      } finally {
        await lock.release();
      }
      expect(codes(failed)).toEqual(['INTERNAL_SERVER_ERROR']);
      expect(failed.errors![0]!.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR', requestId: failed.headers.get('x-request-id') });
      expect(failed.errors![0]!.message).toBe('Internal server error');
      // Cancelled by the timeout (1 s), not by anything else: well before the lock went away.
      expect(ms).toBeGreaterThanOrEqual(900);
      expect(ms).toBeLessThan(8000);
      const after = ok(await app.gql(`query($id: ID!) { organization(id: $id) { name } }`, { id: org.id }, { as: owner }));
      expect(after.organization.name).toBe('Before');
      expect(ok(await app.gql(UPDATE, { id: org.id, name: 'After' }, { as: owner })).updateOrganization.name).toBe('After');
    });

    it('a transaction left idle past idle_in_transaction_session_timeout is ended by PostgreSQL, and the pool hands out working connections afterwards', async () => {
      const lease = await app.db.lease();
      let pid: number;
      try {
        await lease.runner.query('BEGIN');
        pid = (await lease.runner.query(`SELECT pg_backend_pid() AS pid`))[0].pid;
        await new Promise((r) => setTimeout(r, 1500));
        // The session is gone on the server; the pool dropped the connection (TypeORM releases it on the error).
        const { rows } = await side.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1`, [pid]);
        expect(rows[0].n).toBe(0);
        await expect(lease.runner.query('SELECT 1')).rejects.toThrow();
      } finally {
        await lease.done();
      }
      const owner = uniqueEmail('idle');
      expect(ok(await app.gql(`{ me { user { email } } }`, {}, { as: owner })).me.user.email).toBe(owner);
    });
  });

  describe('an exhausted pool', () => {
    let app: TestApp;
    let side: Client;
    beforeAll(async () => {
      app = await startTestApp({ env: { DB_POOL_MAX: '2', DB_CONNECTION_TIMEOUT_MS: '1000', DB_STATEMENT_TIMEOUT_MS: '30000' } });
      side = await sideConnection(app, 'timeouts-test');
    });
    afterAll(async () => {
      await side?.end();
      await app?.close();
    });

    it('answers the next request 503 within DB_CONNECTION_TIMEOUT_MS instead of hanging; the held requests then finish normally', async () => {
      const owner = uniqueEmail('pool');
      const org = await createOrganization(app, owner);
      const lock = await holdRowLock(side, org.id);
      let held: Array<Promise<GqlResult>>;
      try {
        // Two mutations wait on the row lock: each holds one of the pool's two connections.
        held = [1, 2].map((n) => app.gql(UPDATE, { id: org.id, name: `Held ${n}` }, { as: owner }));
        await untilWaitingOnLocks(side, 2);
        const { result: refused, ms } = await timed(() => app.gql(`{ me { user { email } } }`, {}, { as: owner }));
        expect(refused.status).toBe(503);
        expect(codes(refused)).toEqual(['INTERNAL_SERVER_ERROR']);
        expect(refused.errors![0]!.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR', reason: 'DATABASE_UNAVAILABLE', requestId: refused.headers.get('x-request-id') });
        expect(ms).toBeGreaterThanOrEqual(900);
        expect(ms).toBeLessThan(5000);
        // Readiness has a connection of its own: an exhausted pool is not an unreachable database.
        expect((await fetch(`${app.url}/readyz`)).status).toBe(200);
      } finally {
        await lock.release();
      }
      const done = await Promise.all(held);
      expect(done.map((r) => [r.status, r.errors])).toEqual([
        [200, undefined],
        [200, undefined],
      ]);
      expect(ok(await app.gql(`{ me { user { email } } }`, {}, { as: owner })).me.user.email).toBe(owner);
    });
  });
});
