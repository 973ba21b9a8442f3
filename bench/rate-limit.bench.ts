/**
 * The rate-limit counter, measured (README "Rate limits"): statements per second and latency of
 * one count, 16 concurrent clients on separate connections, for
 * - `app_rate_limit_hit` outside any organization (user bucket) and naming a workspace (its
 *   organization is found among the principal's memberships, its plan read, its bucket counted);
 * - the statement rate-limiter-flexible's RateLimiterPostgres sends (an upsert on a logged table
 *   keyed by the bucket with an expiry), reproduced here, which needs the limit — so the
 *   organization and its plan — known beforehand: one more statement, in the request's transaction.
 * Run: `TEST_DATABASE_URL=postgres://… npm run bench:ratelimit`. BENCH_SECONDS (default 5), BENCH_CONCURRENCY (16).
 */
import 'reflect-metadata';
import { Pool } from 'pg';
import { startTestApp } from '../test/helpers/app';
import { createOrganization } from '../test/helpers/factories';

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 16);
const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

async function measure(label: string, pool: Pool, run: (client: number) => Promise<unknown>): Promise<void> {
  const latencies: number[] = [];
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, client) => {
      while (Date.now() < end) {
        const started = performance.now();
        await run(client);
        latencies.push(performance.now() - started);
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  process.stdout.write(`${label}: ${Math.round(latencies.length / seconds)} counts/s, p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms\n`);
  void pool;
}

async function main(): Promise<void> {
  const app = await startTestApp();
  if (!app.databaseUrl) throw new Error('set TEST_DATABASE_URL: the bench compares PostgreSQL statements');
  const pool = new Pool({ connectionString: app.databaseUrl, max: concurrency });
  try {
    // 16 users, each a member of one organization (its default workspace is what the requests name).
    const users = await Promise.all(Array.from({ length: concurrency }, async (_, i) => {
      const email = `bench-rl-${i}@example.com`;
      const org = await createOrganization(app, email, { name: `Bench ${i}` });
      const [{ subject }] = (await pool.query(`SELECT subject FROM users WHERE email = $1`, [email])).rows;
      return { subject: subject as string, org: org.id, workspace: org.defaultWorkspaceId };
    }));
    const HIT = `SELECT organization_id, hits, max_hits, retry_after FROM app_rate_limit_hit($1, $2, NULL, $3::text[], $4::text[], 1000000, NULL, NULL, 1)`;
    // Warm-up: every connection opened and every statement planned once before anything is measured.
    await Promise.all(users.map((u) => pool.query(HIT, [`user:${u.subject}`, u.subject, [], []])));
    await measure('app_rate_limit_hit, naming a workspace (warm-up)', pool, (c) => pool.query(HIT, [`user:${users[c]!.subject}`, users[c]!.subject, ['workspace'], [users[c]!.workspace]]));
    await measure('app_rate_limit_hit, user bucket', pool, (c) => pool.query(HIT, [`user:${users[c]!.subject}`, users[c]!.subject, [], []]));
    await measure('app_rate_limit_hit, naming a workspace', pool, (c) => pool.query(HIT, [`user:${users[c]!.subject}`, users[c]!.subject, ['workspace'], [users[c]!.workspace]]));

    // RateLimiterPostgres: a logged table (key, points, expire) and one upsert per count.
    await pool.query(`CREATE TABLE IF NOT EXISTS rlflx (key varchar(255) PRIMARY KEY, points integer NOT NULL DEFAULT 0, expire bigint)`);
    const UPSERT = `INSERT INTO rlflx (key, points, expire) VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE SET
      points = CASE WHEN rlflx.expire <= $4 THEN $2 ELSE rlflx.points + $2 END,
      expire = CASE WHEN rlflx.expire <= $4 THEN $3 ELSE rlflx.expire END RETURNING points, expire`;
    const upsert = (key: string) => pool.query(UPSERT, [key, 1, Date.now() + 60_000, Date.now()]);
    await measure('RateLimiterPostgres upsert (limit known)', pool, (c) => upsert(`user:${users[c]!.subject}`));
    // …and the organization and its plan's limit found first (in the request's transaction, RLS on).
    const PLAN = `SELECT p.api_rate_limit_per_minute FROM workspaces w JOIN subscriptions s ON s.organization_id = w.organization_id JOIN plans p ON p.key = s.plan_key WHERE w.id = $1`;
    await measure('plan lookup + RateLimiterPostgres upsert', pool, async (c) => {
      await pool.query(PLAN, [users[c]!.workspace]);
      await upsert(`user:${users[c]!.subject}@${users[c]!.org}`);
    });
  } finally {
    await pool.end();
    await app.close();
  }
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
