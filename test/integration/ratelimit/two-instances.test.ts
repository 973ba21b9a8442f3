import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { freshDatabaseUrl, usesRealPostgres } from '../../helpers/app';
import { buildService, post, type PostResult, type ServiceProcess, startService } from '../../helpers/service-process';

/**
 * The rate limit is shared by every instance on the database (SPEC §1, §8): two service processes
 * on one PostgreSQL, each configured with a limit of N, together serve exactly N requests of a
 * principal per minute and refuse the other N of 2 × N — outside any organization (the user limit)
 * and inside one (its plan's limit).
 */
const N = 6;
const onPostgres = usesRealPostgres() ? describe : describe.skip;

let build: ReturnType<typeof buildService>;
beforeAll(() => {
  if (usesRealPostgres()) build = buildService('ratelimit');
}, 120_000);
afterAll(() => build?.remove());

onPostgres('two instances on one database', () => {
  let a: ServiceProcess;
  let b: ServiceProcess;
  let side: Client;
  let drop: () => Promise<void>;
  let dataDir: string;

  beforeAll(async () => {
    const fresh = await freshDatabaseUrl();
    drop = fresh.drop;
    // One DATA_DIR (the dev issuer's key pair) and one master key: replicas of one service.
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenant-ratelimit-'));
    const env = { DATABASE_URL: fresh.url!, DATA_DIR: dataDir, SECRETS_MASTER_KEY: crypto.randomBytes(32).toString('base64'), RATE_LIMIT_USER_PER_MINUTE: String(N), LOG_LEVEL: 'warn' };
    a = await startService(build.dir, env);
    b = await startService(build.dir, env);
    side = new Client({ connectionString: fresh.url, application_name: 'ratelimit-test' });
    await side.connect();
  }, 120_000);

  afterAll(async () => {
    await a?.stop(5000);
    await b?.stop(5000);
    await side?.end();
    await drop?.();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** A fresh count, not too close to the end of the database's minute (a burst must fall in one minute). */
  async function freshMinute(): Promise<void> {
    const { rows } = await side.query(`SELECT extract(epoch FROM date_trunc('minute', now()) + interval '1 minute' - now())::float8 AS left`);
    const left = Number(rows[0].left);
    if (left < 10) await new Promise((r) => setTimeout(r, Math.ceil((left + 0.5) * 1000)));
    await side.query(`DELETE FROM rate_limit_counters`);
  }

  /** 2 × N requests at once, alternating between the instances. */
  const burst = (query: string, variables: Record<string, unknown> = {}): Promise<PostResult[]> =>
    Promise.all(Array.from({ length: 2 * N }, (_, i) => post((i % 2 === 0 ? a : b).url, a.adminToken, query, variables)));

  function expectExactlyN(results: PostResult[]): void {
    const served = results.filter((r) => r.status === 200 && !r.body.errors);
    const refused = results.filter((r) => r.status === 429);
    expect(served).toHaveLength(N);
    expect(refused).toHaveLength(N);
    for (const r of refused) {
      expect(r.body.errors?.map((e) => e.extensions?.code)).toEqual(['RATE_LIMITED']);
      expect(r.body.errors![0]!.extensions!.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    }
  }

  it(`outside any organization: 2 × ${N} requests over a user limit of ${N}, half on each instance → exactly ${N} refused`, async () => {
    await freshMinute();
    expectExactlyN(await burst(`{ me { user { email } } }`));
  });

  it(`inside an organization: 2 × ${N} requests over its plan's limit of ${N} → exactly ${N} refused`, async () => {
    await side.query(`DELETE FROM rate_limit_counters`);
    const listed = await post(a.url, a.adminToken, `{ organizations(first: 5) { nodes { id slug } } }`);
    const organization = listed.body.data!.organizations.nodes.find((o: { slug: string }) => o.slug === 'default');
    expect(organization).toBeDefined();
    await side.query(`UPDATE plans SET api_rate_limit_per_minute = $1 WHERE key = (SELECT plan_key FROM subscriptions WHERE organization_id = $2)`, [N, organization.id]);
    await freshMinute();
    expectExactlyN(await burst(`query($id: ID!) { organization(id: $id) { id name } }`, { id: organization.id }));
    // The user's own bucket was untouched by the organization's requests.
    expect((await post(b.url, a.adminToken, `{ me { user { email } } }`)).status).toBe(200);
  });
});
