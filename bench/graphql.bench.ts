/**
 * Load benchmark: the service in-process on an ephemeral loopback port, a fixed data set, then a
 * bounded closed loop of concurrent clients per scenario. Prints latency percentiles, throughput
 * and SQL statements per request. Not part of `npm test`: run `npm run bench`.
 *   BENCH_SECONDS (default 10) per scenario, BENCH_CONCURRENCY (default 8);
 *   TEST_DATABASE_URL=postgres://… to run against PostgreSQL (a throwaway database), else PGlite.
 */
import 'reflect-metadata';
import { ok, startTestApp, type TestApp } from '../test/helpers/app';
import { createOrganization, type CreatedOrganization } from '../test/helpers/factories';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 8);

interface Scenario {
  name: string;
  run: (i: number) => Promise<{ ok: boolean; statements: number }>;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function measure(s: Scenario): Promise<string> {
  const latencies: number[] = [];
  let failures = 0;
  let statements = 0;
  let n = 0;
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        const started = performance.now();
        const r = await s.run(n++);
        latencies.push(performance.now() - started);
        statements += r.statements;
        if (!r.ok) failures += 1;
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  const f = (v: number) => v.toFixed(1).padStart(7);
  return `| ${s.name.padEnd(34)} | ${String(latencies.length).padStart(6)} | ${(latencies.length / seconds).toFixed(0).padStart(6)} | ${f(percentile(latencies, 50))} | ${f(percentile(latencies, 95))} | ${f(percentile(latencies, 99))} | ${(statements / latencies.length).toFixed(1).padStart(5)} | ${failures} |`;
}

async function main(): Promise<void> {
  // Rate limits off: the load is far above any plan's limit (README "Rate limits").
  const app: TestApp = await startTestApp({ env: { RATE_LIMITS: 'false' } });
  try {
    const owner = 'bench-owner@example.com';
    const orgs: CreatedOrganization[] = [];
    for (let o = 0; o < 5; o += 1) {
      const org = await createOrganization(app, owner, { name: `Bench ${o}` });
      orgs.push(org);
      for (let w = 0; w < 3; w += 1) {
        const ws = ok(await app.gql(`mutation($o: ID!) { createWorkspace(organizationId: $o, input: { name: "W" }) { id } }`, { o: org.id }, { as: owner }));
        for (let e = 0; e < 2; e += 1) {
          ok(
            await app.gql(
              `mutation($w: ID!) { createEnvironment(workspaceId: $w, input: { name: "E", tier: DEV, resources: { cpu: 0.1, ramMb: 64, diskGb: 1 } }) { id } }`,
              { w: ws.createWorkspace.id },
              { as: owner },
            ),
          );
        }
      }
    }
    const call = async (query: string, variables: Record<string, unknown>, as: string) => {
      const r = await app.gql(query, variables, { as });
      return { ok: !r.errors, statements: Number(r.headers.get('x-sql-statements') ?? 0) };
    };
    const scenarios: Scenario[] = [
      { name: 'me (provisioning + scope)', run: () => call(`{ me { user { id email } } }`, {}, owner) },
      {
        name: 'tree: 5 orgs > 4 workspaces > 2 envs',
        run: () =>
          call(
            `{ me { organizations { nodes { id name memberCount workspaceCount environmentCount owner { email }
               workspaces { totalCount nodes { id slug viewerPermissions environments { id slug resources { cpu ramMb } } } } } } } }`,
            {},
            owner,
          ),
      },
      { name: 'organization(id) + audit page', run: (i) => call(`query($id: ID!) { organization(id: $id) { name auditEvents(first: 20) { edges { node { action occurredAt } } } } }`, { id: orgs[i % orgs.length]!.id }, owner) },
      {
        name: 'updateOrganization (write + audit)',
        run: (i) => call(`mutation($id: ID!, $n: String!) { updateOrganization(id: $id, input: { name: $n }) { id } }`, { id: orgs[i % orgs.length]!.id, n: `Bench ${i}` }, owner),
      },
    ];
    process.stdout.write(`\n${app.db.embedded ? 'PGlite (embedded)' : 'PostgreSQL'}, ${concurrency} concurrent clients, ${seconds} s per scenario\n\n`);
    process.stdout.write('| scenario                           |   reqs |  req/s |  p50 ms |  p95 ms |  p99 ms | stmts | failed |\n');
    process.stdout.write('|------------------------------------|--------|--------|---------|---------|---------|-------|--------|\n');
    for (const s of scenarios) process.stdout.write(`${await measure(s)}\n`);
  } finally {
    await app.close();
  }
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
