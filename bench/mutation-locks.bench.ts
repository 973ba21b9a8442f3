/**
 * How long a mutation's locks are held, measured: concurrent createEnvironment calls in ONE
 * organization and workspace, all deriving their slug from the same name, so that each holds the
 * slug allocation lock (pg_advisory_xact_lock) until its transaction ends — as quota checks will
 * serialise creates in an organization. Each response also resolves a selection set that reads
 * (workspace → organization → counts). Run: `npm run bench:locks` (TEST_DATABASE_URL=postgres://…
 * for PostgreSQL). BENCH_SECONDS (default 10), BENCH_CONCURRENCY (default 16).
 */
import 'reflect-metadata';
import { ok, startTestApp } from '../test/helpers/app';
import { createOrganization } from '../test/helpers/factories';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 16);
/** BENCH_HEAVY=1: the selection set also reads 50 audit events and the members with their users. */
const heavy = process.env.BENCH_HEAVY ? 'auditEvents(first: 50) { nodes { action actor { email } } } members(first: 50) { nodes { user { email } role { key } } }' : '';
const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

async function main(): Promise<void> {
  // Rate limits off: the load is far above any plan's limit (README "Rate limits").
  const app = await startTestApp({ env: { RATE_LIMITS: 'false' } });
  try {
    const owner = 'locks-owner@example.com';
    const org = await createOrganization(app, owner, { name: 'Locks' });
    const latencies: number[] = [];
    let failures = 0;
    const end = Date.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (Date.now() < end) {
          const started = performance.now();
          const r = await app.gql(
            `mutation($w: ID!) { createEnvironment(workspaceId: $w, input: { name: "Preview", tier: DEV, resources: { cpu: 0.1, ramMb: 64, diskGb: 1 } }) {
               id slug workspace { name organization { name memberCount workspaceCount environmentCount ${heavy} } } } }`,
            { w: org.defaultWorkspaceId },
            { as: owner },
          );
          latencies.push(performance.now() - started);
          if (r.errors) {
            failures += 1;
            if (failures === 1) process.stderr.write(`first failure: ${JSON.stringify(r.errors[0])}\n`);
          }
        }
      }),
    );
    latencies.sort((a, b) => a - b);
    const count = ok(await app.gql(`query($id: ID!) { organization(id: $id) { environmentCount } }`, { id: org.id }, { as: owner })).organization.environmentCount;
    process.stdout.write(
      `${app.db.embedded ? 'PGlite' : 'PostgreSQL'}, ${heavy ? 'heavy' : 'light'} selection set, ${concurrency} clients, ${seconds} s: ${latencies.length} creates (${count} stored), ` +
        `${(latencies.length / seconds).toFixed(0)} req/s, p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, ${failures} failed\n`,
    );
  } finally {
    await app.close();
  }
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
