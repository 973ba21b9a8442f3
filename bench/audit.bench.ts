/**
 * Audit-trail benchmark (README, "Audit trail"): seeds BENCH_EVENTS (default 10 000 000) audit
 * events across BENCH_ORGANIZATIONS (default 1 000) organizations straight into PostgreSQL with
 * generate_series (not through the API), in a database of its own that it creates and drops, then
 * measures the real service path — the GraphQL query over HTTP against the service running
 * in-process — and prints p50/p99 per scenario and the EXPLAIN (ANALYZE, BUFFERS) plans of the
 * statements the service runs, as the service's role under row-level security.
 *
 *   BENCH_DATABASE_URL (else TEST_DATABASE_URL, else DATABASE_URL): a PostgreSQL server whose user
 *     may create databases; the benchmark's database is created there and dropped at the end.
 *   BENCH_REQUESTS (default 400) per scenario, sequential (latency, not throughput).
 *
 * Organizations are skewed like real tenants: the k-th of 1 000 gets events in proportion to
 * sqrt(k+1) - sqrt(k), so the largest holds ~3 % of all events (~316 000 of 10 M), the median ~7 000.
 */
import 'reflect-metadata';
import { Client } from 'pg';
import { ok, startTestApp, type TestApp } from '../test/helpers/app';
import { createOrganization } from '../test/helpers/factories';
import { auditPageStatement } from '../src/modules/audit/audit.loaders';
import { auditFilter, type AuditEventFilterInput } from '../src/modules/audit/audit.filter';
import { decodeCursor } from '../src/common/pagination';
import { APP_ROLE } from '../src/database/roles';
import pino from 'pino';
import { RequestContext } from '../src/context';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 10_000_000);
const ORGANIZATIONS = Number(process.env.BENCH_ORGANIZATIONS ?? 1000);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 400);
const CHUNK = 1_000_000;
/** Where in the size order the benchmark user's organizations sit: the largest, then ever smaller ones. */
const MEMBER_RANKS = [0, 1, 2, 10, 100, 500, 999].filter((r) => r < ORGANIZATIONS);
const ACTIONS = [
  'workspace.updated', 'environment.updated', 'environment.created', 'member.role_changed', 'environment.destroyed', 'workspace.created',
  'member.invited', 'member.joined', 'feature.toggled', 'secret.set', 'role.updated', 'api_key.created', 'subscription.plan_changed',
  'organization.updated', 'member.removed', 'invitation.revoked', 'workspace.deleted', 'secret.deleted', 'role.created', 'api_key.revoked',
];

const log = (message: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${message}\n`);
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

/** A filter as GraphQL variables carry it (dates as ISO strings). */
type FilterVariables = Omit<AuditEventFilterInput, 'since' | 'until'> & { since?: string; until?: string };

interface Scenario {
  name: string;
  organizationId: string;
  filter: FilterVariables | null;
  after: string | null;
}

const asInput = (f: FilterVariables | null): AuditEventFilterInput | null =>
  f && { ...f, since: f.since ? new Date(f.since) : null, until: f.until ? new Date(f.until) : null };

const QUERY = `query($org: ID!, $filter: AuditEventFilter, $first: Int, $after: String) {
  auditEvents(organizationId: $org, filter: $filter, first: $first, after: $after) {
    nodes { id occurredAt action actor { type id email } resourceType resourceId resourceName workspaceId changes metadata }
    pageInfo { hasNextPage endCursor }
  }
}`;

async function seed(admin: Client, ids: string[]): Promise<void> {
  // Bulk load: the primary key and the indexes are dropped, the rows written, then the very same
  // definitions (read from the catalog, i.e. the migrations') rebuilt at once.
  const { rows: indexes } = await admin.query<{ name: string; def: string }>(
    `SELECT indexname AS name, indexdef AS def FROM pg_indexes WHERE tablename = 'audit_events' AND indexname <> 'audit_events_pkey'`,
  );
  await admin.query(`ALTER TABLE audit_events DROP CONSTRAINT audit_events_pkey`);
  for (const index of indexes) await admin.query(`DROP INDEX ${index.name}`);
  await admin.query(`SET maintenance_work_mem = '512MB'`);
  for (let from = 1; from <= EVENTS; from += CHUNK) {
    const to = Math.min(EVENTS, from + CHUNK - 1);
    const started = Date.now();
    await admin.query(
      `INSERT INTO audit_events (organization_id, id, occurred_at, action, actor_type, actor_id, actor_email, workspace_id, resource_type, resource_id,
         resource_name, changes, metadata, ip_address, user_agent, request_id)
       SELECT ($1::uuid[])[1 + x.k], gen_random_uuid(), now() - random() * interval '365 days',
         ($2::text[])[1 + floor(power(random(), 2) * array_length($2::text[], 1))::int],
         CASE WHEN x.a < 45 THEN 'USER' WHEN x.a < 48 THEN 'API_KEY' ELSE 'SYSTEM' END,
         CASE WHEN x.a < 48 THEN md5(x.k || ':actor:' || x.a)::uuid::text END,
         CASE WHEN x.a < 45 THEN 'user' || x.a || '@org' || x.k || '.example.com' END,
         md5(x.k || ':ws:' || (x.r % 10))::uuid,
         (ARRAY['workspace', 'environment', 'membership', 'role', 'secret', 'subscription'])[1 + x.r % 6],
         md5(x.k || ':res:' || x.r)::uuid::text, 'Resource ' || x.r,
         CASE WHEN g % 3 = 0 THEN jsonb_build_object('changedFields', jsonb_build_array('name'), 'oldValues', jsonb_build_object('name', 'old'), 'newValues', jsonb_build_object('name', 'new')) END,
         jsonb_build_object('seq', g), '203.0.113.' || (g % 250), 'bench/1.0', 'req-' || g
       FROM generate_series($3::int, $4::int) AS g
       CROSS JOIN LATERAL (SELECT floor(power(random(), 2) * $5)::int AS k, floor(random() * 50)::int AS a, floor(random() * 500)::int AS r, g AS gg) AS x`,
      [ids, ACTIONS, from, to, ids.length],
    );
    log(`seeded ${to.toLocaleString('en')} / ${EVENTS.toLocaleString('en')} events (${((Date.now() - started) / 1000).toFixed(0)} s for this chunk)`);
  }
  let started = Date.now();
  await admin.query(`ALTER TABLE audit_events ADD CONSTRAINT audit_events_pkey PRIMARY KEY (organization_id, id)`);
  log(`primary key rebuilt in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  for (const index of indexes) {
    started = Date.now();
    await admin.query(index.def);
    log(`${index.name} rebuilt in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  started = Date.now();
  await admin.query(`VACUUM (ANALYZE) audit_events`);
  log(`VACUUM ANALYZE in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

/** EXPLAIN (ANALYZE, BUFFERS) of the statement the service runs for a page, as its role, in the organization's scope. */
async function explain(admin: Client, scenario: Scenario, dropIndex?: string): Promise<string> {
  const after = decodeCursor(scenario.after, ['timestamp', 'uuid']) as [string, string] | null;
  const { text, params } = auditPageStatement([scenario.organizationId], 51, after, auditFilter(asInput(scenario.filter)));
  await admin.query('BEGIN');
  try {
    if (dropIndex) await admin.query(`DROP INDEX ${dropIndex}`);
    await admin.query(`SELECT set_config('app.org_ids', $1, true)`, [scenario.organizationId]);
    await admin.query(`SET LOCAL ROLE ${APP_ROLE}`);
    const { rows } = await admin.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${text}`, params);
    return rows.map((r) => r['QUERY PLAN']).join('\n');
  } finally {
    await admin.query('ROLLBACK');
  }
}

async function main(): Promise<void> {
  const base = process.env.BENCH_DATABASE_URL?.trim() || process.env.TEST_DATABASE_URL?.trim() || process.env.DATABASE_URL?.trim();
  if (!base) throw new Error('set BENCH_DATABASE_URL (or TEST_DATABASE_URL / DATABASE_URL) to a PostgreSQL server');
  // The service's test harness creates the dedicated database (tenant_test_…) on that server and drops it on close.
  process.env.TEST_DATABASE_URL = base;
  delete process.env.TEST_EMBEDDED_ONLY;
  // Rate limits off: the load is far above any plan's limit (README "Rate limits").
  const app: TestApp = await startTestApp({ env: { RATE_LIMITS: 'false' } });
  const admin = new Client({ connectionString: app.databaseUrl, application_name: 'audit-bench' });
  await admin.connect();
  try {
    const owner = 'audit-bench@example.com';
    const mine: string[] = [];
    for (let i = 0; i < MEMBER_RANKS.length; i += 1) mine.push((await createOrganization(app, owner, { name: `Bench member org ${i}` })).id);
    const { rows } = await admin.query<{ id: string }>(
      `WITH made AS (
         INSERT INTO organizations (name, slug) SELECT 'Bench ' || g, 'bench-' || g FROM generate_series(1, $1::int) g RETURNING id
       ), subscribed AS (
         INSERT INTO subscriptions (organization_id, plan_key, status, current_period_start, current_period_end)
         SELECT id, 'BUSINESS', 'ACTIVE', now(), now() + interval '1 month' FROM made RETURNING organization_id
       ) SELECT organization_id AS id FROM subscribed`,
      [ORGANIZATIONS - MEMBER_RANKS.length],
    );
    const others = rows.map((r) => r.id);
    const ids: string[] = [];
    for (let rank = 0; rank < ORGANIZATIONS; rank += 1) {
      const at = MEMBER_RANKS.indexOf(rank);
      ids.push(at >= 0 ? mine[at]! : others.pop()!);
    }
    const seedStarted = Date.now();
    await seed(admin, ids);
    log(`seeding done in ${((Date.now() - seedStarted) / 60000).toFixed(1)} min`);

    const { rows: sizes } = await admin.query<{ id: string; n: number }>(`SELECT organization_id AS id, count(*)::int AS n FROM audit_events WHERE organization_id = ANY ($1) GROUP BY 1`, [mine]);
    const size = new Map(sizes.map((s) => [s.id, s.n]));
    const { rows: [totals] } = await admin.query<{ n: string; pretty: string }>(`SELECT count(*) AS n, pg_size_pretty(pg_total_relation_size('audit_events')) AS pretty FROM audit_events`);
    log(`audit_events: ${Number(totals!.n).toLocaleString('en')} rows, ${totals!.pretty} with indexes; the benchmark user's organizations hold ${mine.map((id) => size.get(id) ?? 0).join(', ')} events`);

    const largest = mine[0]!;
    const median = mine[MEMBER_RANKS.indexOf(500)] ?? mine[mine.length - 1]!;
    // A cursor 40 pages (2 000 events) deep into the largest organization's filtered trail, and one for an actor's.
    const deepCursor = async (organizationId: string, filter: FilterVariables | null, pages: number) => {
      let after: string | null = null;
      for (let i = 0; i < pages; i += 1) after = ok(await app.gql(QUERY, { org: organizationId, filter, first: 50, after }, { as: owner })).auditEvents.pageInfo.endCursor;
      return after;
    };
    const { rows: [actor] } = await admin.query<{ actor_id: string }>(`SELECT actor_id FROM audit_events WHERE organization_id = $1 AND actor_id IS NOT NULL LIMIT 1`, [largest]);
    const { rows: [resource] } = await admin.query<{ resource_id: string; resource_type: string }>(`SELECT resource_id, resource_type FROM audit_events WHERE organization_id = $1 LIMIT 1`, [largest]);
    const since = new Date(Date.now() - 180 * 86_400_000).toISOString();
    const actionsFilter = { actions: ['member.role_changed', 'secret.set', 'api_key.created'], since };
    const scenarios: Scenario[] = [
      { name: 'first page, largest organization', organizationId: largest, filter: null, after: null },
      { name: 'first page, median organization', organizationId: median, filter: null, after: null },
      { name: 'filtered deep page (3 actions, 180 days, page 41)', organizationId: largest, filter: actionsFilter, after: await deepCursor(largest, actionsFilter, 40) },
      { name: 'actor filter, deep page (page 11)', organizationId: largest, filter: { actorId: actor!.actor_id }, after: await deepCursor(largest, { actorId: actor!.actor_id }, 10) },
      { name: 'resource filter, first page', organizationId: largest, filter: { resourceType: resource!.resource_type, resourceId: resource!.resource_id }, after: null },
      { name: 'rare action, first page', organizationId: largest, filter: { actions: ['api_key.revoked'] }, after: null },
    ];

    // In-process: the same GraphQL execution (token verification, context, shield, resolvers,
    // loaders, the request transaction) without the HTTP hop and the client in the same event loop.
    const verifier = await app.issuer.verifier();
    const token = await app.token(owner);
    const deps = { config: app.config, db: app.db, envelope: app.envelope, logger: pino({ level: 'silent' }) };
    const inProcess = async (s: Scenario) => {
      const principal = { kind: 'user' as const, identity: await verifier.verify(token) };
      const ctx = new RequestContext(deps, principal, { ipAddress: '127.0.0.1', userAgent: 'bench' });
      const r = await app.server.apollo.executeOperation({ query: QUERY, variables: { org: s.organizationId, filter: s.filter, first: 50, after: s.after } }, { contextValue: ctx });
      if (r.body.kind !== 'single' || r.body.singleResult.errors) throw new Error(`${s.name}: ${JSON.stringify(r.body)}`);
    };
    const overHttp = async (s: Scenario) => {
      const r = await app.gql(QUERY, { org: s.organizationId, filter: s.filter, first: 50, after: s.after }, { as: owner });
      if (r.errors) throw new Error(`${s.name}: ${JSON.stringify(r.errors)}`);
    };
    const time = async (run: () => Promise<void>) => {
      const latencies: number[] = [];
      for (let i = 0; i < REQUESTS; i += 1) {
        const started = performance.now();
        await run();
        latencies.push(performance.now() - started);
      }
      latencies.sort((a, b) => a - b);
      return latencies;
    };
    const lines = ['| scenario | HTTP p50 ms | HTTP p99 ms | in-process p50 ms | in-process p99 ms |', '|---|---:|---:|---:|---:|'];
    for (const s of scenarios) {
      const http = await time(() => overHttp(s));
      const local = await time(() => inProcess(s));
      const f = (v: number) => v.toFixed(1);
      lines.push(`| ${s.name} | ${f(percentile(http, 50))} | ${f(percentile(http, 99))} | ${f(percentile(local, 50))} | ${f(percentile(local, 99))} |`);
      log(lines[lines.length - 1]!);
    }
    process.stdout.write(`\n## Latency of the GraphQL query (sequential requests, first: 50; ${REQUESTS} per scenario and path)\n\n${lines.join('\n')}\n`);
    for (const s of scenarios) process.stdout.write(`\n### ${s.name}\n\n${await explain(admin, s)}\n`);
    const resourceScenario = scenarios.find((s) => s.name.startsWith('resource filter'))!;
    const actorScenario = scenarios.find((s) => s.name.startsWith('actor filter'))!;

    process.stdout.write(`\n### ${resourceScenario.name} — without audit_events_resource_idx (for comparison)\n\n${await explain(admin, resourceScenario, 'audit_events_resource_idx')}\n`);
    process.stdout.write(`\n### ${actorScenario.name} — without audit_events_actor_idx (for comparison)\n\n${await explain(admin, actorScenario, 'audit_events_actor_idx')}\n`);
  } finally {
    await admin.end();
    await app.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
