import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { MIGRATIONS } from '../../../src/database/migrations';
import { freshDatabaseUrl, usesRealPostgres } from '../../helpers/app';
import { acceptsConnections, buildService, post, type ServiceProcess, serviceSessions, startService, until, within } from '../../helpers/service-process';

/**
 * The built service as processes (SPEC §1, §8): several instances starting at once on a fresh
 * database, and a graceful SIGTERM. PostgreSQL only: the embedded database belongs to one
 * process, and a request is held in flight here by a row lock another session holds.
 */
const onPostgres = usesRealPostgres() ? describe : describe.skip;

let build: ReturnType<typeof buildService>;
beforeAll(() => {
  if (usesRealPostgres()) build = buildService('lifecycle');
}, 120_000);
afterAll(() => build?.remove());

/** A fresh database, a DATA_DIR, and a superuser connection to the database for the test's own reads and locks. */
async function environment() {
  const { url, drop } = await freshDatabaseUrl();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenant-lifecycle-'));
  const started: ServiceProcess[] = [];
  let side: Client | undefined;
  return {
    url: url!,
    dataDir,
    async start(env: Record<string, string> = {}) {
      const service = await startService(build.dir, { DATABASE_URL: url!, DATA_DIR: dataDir, SECRETS_MASTER_KEY: crypto.randomBytes(32).toString('base64'), ...env });
      started.push(service);
      return service;
    },
    async side(): Promise<Client> {
      if (!side) {
        side = new Client({ connectionString: url, application_name: 'lifecycle-test' });
        await side.connect();
      }
      return side;
    },
    async cleanup() {
      for (const s of started) await s.stop(5000);
      await side?.end();
      await drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

onPostgres('the service as processes (PostgreSQL)', () => {
  it('two instances started at once on a fresh database both come up: migrations run once, under the advisory lock, and one default organization is seeded', async () => {
    const env = await environment();
    try {
      // One DATA_DIR for both, as replicas sharing a volume, and no SECRETS_MASTER_KEY (empty is
      // unset): the dev key pair and the master key are generated there once, whole.
      const [a, b] = await Promise.all([env.start({ SECRETS_MASTER_KEY: '' }), env.start({ SECRETS_MASTER_KEY: '' })]);
      expect(fs.readdirSync(env.dataDir).sort()).toEqual(['dev-issuer-key.json', 'secrets-master.key']);
      for (const instance of [a!, b!]) {
        expect((await fetch(`${instance.url}/readyz`)).status).toBe(200);
        // Each instance accepts a token the other printed: one key pair.
        for (const token of [a!.adminToken, b!.adminToken]) {
          const me = await post(instance.url, token, `{ me { user { email } organizations { nodes { slug viewerRole { key } } } } }`);
          expect(me.body).toEqual({ data: { me: { user: { email: 'admin@localhost' }, organizations: { nodes: [{ slug: 'default', viewerRole: { key: 'owner' } }] } } } });
        }
      }
      const side = await env.side();
      const { rows: recorded } = await side.query(`SELECT name, count(*)::int AS n FROM migrations GROUP BY name ORDER BY name`);
      expect(recorded).toEqual(MIGRATIONS.map((m) => ({ name: new m().name!, n: 1 })).sort((x, y) => x.name.localeCompare(y.name)));
      const { rows: defaults } = await side.query(`SELECT count(*)::int AS n FROM organizations WHERE slug = 'default'`);
      expect(defaults).toEqual([{ n: 1 }]);
    } finally {
      await env.cleanup();
    }
  }, 120_000);

  it('SIGTERM: the in-flight request finishes with its normal answer, new connections are refused, the pool closes, exit code 0 within 20 s', async () => {
    const env = await environment();
    try {
      const service = await env.start();
      const created = await post(service.url, service.adminToken, `mutation { createOrganization(input: { name: "Before" }) { id } }`);
      const id = created.body.data!.createOrganization.id as string;
      const side = await env.side();

      // Hold the organization's row: the mutation below waits on it, in flight.
      await side.query('BEGIN');
      await side.query('SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE', [id]);
      const inFlight = post(service.url, service.adminToken, `mutation($id: ID!) { updateOrganization(id: $id, input: { name: "Renamed during shutdown" }) { id name } }`, { id });
      let settled = false;
      void inFlight.then(() => (settled = true), () => (settled = true));
      await until('the mutation waiting on the row lock', async () => (await serviceSessions(side, { waitingOnLock: true })) === 1);

      const signalled = Date.now();
      service.child.kill('SIGTERM');
      await until('the listener to close', async () => !(await acceptsConnections(service.port)), 5000);
      // Refused while the request is still in flight and the process still running.
      expect(settled).toBe(false);
      expect(service.child.exitCode).toBeNull();
      await expect(fetch(`${service.url}/healthz`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();

      await side.query('ROLLBACK');
      const answer = await inFlight;
      expect(answer).toEqual({ status: 200, body: { data: { updateOrganization: { id, name: 'Renamed during shutdown' } } } });

      const exit = await within(service.exited, 20_000);
      expect(exit).toMatchObject({ code: 0, signal: null });
      expect(exit !== 'timed out' && exit.at - signalled).toBeLessThan(20_000);
      // The database was closed before exiting ('stopped' is logged after it), and no session is left behind
      // (a backend leaves pg_stat_activity just after its client's Terminate: allowed a second to do so).
      expect(service.output()).toMatch(/"msg":"stopped"/);
      await until('the service sessions to end', async () => (await serviceSessions(side)) === 0, 1000);
      const { rows } = await side.query(`SELECT name FROM organizations WHERE id = $1`, [id]);
      expect(rows).toEqual([{ name: 'Renamed during shutdown' }]);
    } finally {
      await env.cleanup();
    }
  }, 120_000);
});
