import pino from 'pino';
import { randomUUID } from 'node:crypto';
import { codes, type GqlResult, ok, startTestApp, type TestApp, usesRealPostgres } from '../../helpers/app';
import { readAll, sideConnection } from '../../helpers/db';
import { createOrganization, uniqueEmail } from '../../helpers/factories';
import { createScheduler } from '../../../src/jobs/jobs';
import { awayFromMinuteEnd, currentCounters, moveWindowsBack, resetCounters, setPlanRate } from './rate-limit-helpers';

/**
 * Rate limits (SPEC §8, README "Rate limits"): per principal per minute, RATE_LIMIT_USER_PER_MINUTE
 * outside any organization, the plan's apiRateLimitPerMinute inside one; over it the whole request
 * is refused (HTTP 429, Retry-After, RATE_LIMITED with retryAfterSeconds) and nothing of it runs;
 * counted outside the request's transaction (a rolled-back mutation still counts; a counter that
 * cannot count fails open).
 */

const USER_LIMIT = 5;
const PRO_LIMIT = 3;
const ME = `{ me { user { email } } }`;
const ORG = `query($id: ID!) { organization(id: $id) { id } }`;
const ORG_BY_SLUG = `query($slug: String!) { organization(slug: $slug) { id } }`;
const WORKSPACE = `query($id: ID!) { workspace(id: $id) { id } }`;
const CREATE_WS = `mutation($org: ID!, $name: String!) { createWorkspace(organizationId: $org, input: { name: $name }) { id } }`;

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ env: { RATE_LIMIT_USER_PER_MINUTE: String(USER_LIMIT) } });
  // New organizations start TRIALING on PRO.
  await setPlanRate(app, 'PRO', PRO_LIMIT);
  await setPlanRate(app, 'STARTER', 100);
});
afterAll(async () => {
  await app?.close();
});
beforeEach(async () => {
  await awayFromMinuteEnd(app);
  await resetCounters(app);
});

/** Sends the same request `n` times, one after another. */
async function times(n: number, send: () => Promise<GqlResult>): Promise<GqlResult[]> {
  const results: GqlResult[] = [];
  for (let i = 0; i < n; i++) results.push(await send());
  return results;
}

const refused = (r: GqlResult): boolean => r.status === 429;

function expectRefusal(r: GqlResult, limit: number): void {
  expect(r.status).toBe(429);
  expect(r.data).toBeNull();
  expect(codes(r)).toEqual(['RATE_LIMITED']);
  const retry = r.errors![0]!.extensions!.retryAfterSeconds;
  expect(Number.isInteger(retry) && retry >= 1 && retry <= 60).toBe(true);
  expect(r.headers.get('retry-after')).toBe(String(retry));
  expect(r.errors![0]!.extensions!.limit).toBe(limit);
  expect(r.headers.get('x-ratelimit-remaining')).toBe('0');
}

describe('outside any organization: RATE_LIMIT_USER_PER_MINUTE', () => {
  it('serves the first N requests of the minute, refuses the rest with 429 and RATE_LIMITED, each user on their own', async () => {
    const ada = uniqueEmail('ada');
    const bob = uniqueEmail('bob');
    const results = await times(USER_LIMIT + 3, () => app.gql(ME, {}, { as: ada }));
    expect(results.filter((r) => r.status === 200 && !r.errors)).toHaveLength(USER_LIMIT);
    expect(results.slice(0, USER_LIMIT).map((r) => r.headers.get('x-ratelimit-remaining'))).toEqual(['4', '3', '2', '1', '0']);
    expect(results[0]!.headers.get('x-ratelimit-limit')).toBe(String(USER_LIMIT));
    for (const r of results.slice(USER_LIMIT)) expectRefusal(r, USER_LIMIT);
    // Another principal has a bucket of its own.
    expect(ok(await app.gql(ME, {}, { as: bob })).me.user.email).toBe(bob);
    // Refused requests count too: hammering does not sneak more through.
    const counters = await currentCounters(app);
    expect(Object.values(counters).sort((a, b) => a - b)).toEqual([1, USER_LIMIT + 3]);
  });

  it('concurrent requests: exactly N served whatever the interleaving', async () => {
    const ada = uniqueEmail('burst');
    const token = await app.token(ada);
    const results = await Promise.all(Array.from({ length: 3 * USER_LIMIT }, () => app.gql(ME, {}, { token })));
    expect(results.filter((r) => r.status === 200)).toHaveLength(USER_LIMIT);
    expect(results.filter(refused)).toHaveLength(2 * USER_LIMIT);
  });

  it('a new minute starts a new count (the stored minute moved back instead of waiting), and the sweep removes past minutes', async () => {
    const ada = uniqueEmail('window');
    await times(USER_LIMIT, () => app.gql(ME, {}, { as: ada }));
    expectRefusal(await app.gql(ME, {}, { as: ada }), USER_LIMIT);
    await moveWindowsBack(app);
    ok(await app.gql(ME, {}, { as: ada }));
    expect(Object.values(await currentCounters(app))).toEqual([1]);
    const done = await createScheduler({ config: app.config, db: app.db, logger: pino({ level: 'silent' }), envelope: app.envelope }).runOnce();
    expect(done.rate_limit_sweep).toBe(1);
    expect(await readAll(app, `SELECT key FROM rate_limit_counters WHERE window_start < date_trunc('minute', now())`)).toEqual([]);
  });
});

describe('order', () => {
  it('a request refused before any SQL (query cost, malformed variables) is not counted; over the limit, RATE_LIMITED comes before NOT_FOUND', async () => {
    const ada = uniqueEmail('order');
    const tooComplex = await app.gql(`{ organizations(first: 100) { nodes { workspaces(first: 100) { nodes { environments { id } } } } } }`, {}, { as: ada });
    expect(tooComplex.status).toBe(400);
    expect(codes(tooComplex)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(codes(await app.gql(ORG, {}, { as: ada }))).toEqual(['BAD_USER_INPUT']);
    expect(await currentCounters(app)).toEqual({});
    await times(USER_LIMIT, () => app.gql(ME, {}, { as: ada }));
    expectRefusal(await app.gql(ORG, { id: randomUUID() }, { as: ada }), USER_LIMIT);
    // An invalid token is UNAUTHENTICATED, never counted.
    const anonymous = await app.gql(ME, {}, { token: 'not-a-token' });
    expect(anonymous.status).toBe(401);
    expect(codes(anonymous)).toEqual(['UNAUTHENTICATED']);
  });
});

describe("inside an organization: its plan's apiRateLimitPerMinute", () => {
  it('counts requests naming the organization (by id, slug, workspace…) in its own bucket with the plan limit, apart from the user bucket', async () => {
    const owner = uniqueEmail('owner');
    const org = await createOrganization(app, owner);
    const starter = await createOrganization(app, owner);
    await readAll(app, `UPDATE subscriptions SET plan_key = 'STARTER', status = 'ACTIVE' WHERE organization_id = $1`, [starter.id]);
    await resetCounters(app);

    const inside = [
      await app.gql(ORG, { id: org.id }, { as: owner }),
      await app.gql(ORG_BY_SLUG, { slug: org.slug }, { as: owner }),
      await app.gql(WORKSPACE, { id: org.defaultWorkspaceId }, { as: owner }),
    ];
    for (const r of inside) expect(r.status).toBe(200);
    expect(inside.map((r) => r.headers.get('x-ratelimit-remaining'))).toEqual(['2', '1', '0']);
    expectRefusal(await app.gql(ORG, { id: org.id }, { as: owner }), PRO_LIMIT);
    expectRefusal(await app.gql(CREATE_WS, { org: org.id, name: 'Refused' }, { as: owner }), PRO_LIMIT);
    // Nothing of a refused mutation ran.
    expect(await readAll(app, `SELECT 1 FROM workspaces WHERE organization_id = $1 AND name = 'Refused'`, [org.id])).toEqual([]);

    // Outside the organization, and in another one on another plan, the user is still served.
    expect(ok(await app.gql(ME, {}, { as: owner })).me.user.email).toBe(owner);
    const other = await app.gql(ORG, { id: starter.id }, { as: owner });
    expect(other.status).toBe(200);
    expect(other.headers.get('x-ratelimit-limit')).toBe('100');

    // A request naming two organizations counts in both and is refused while either is over.
    const both = await app.gql(`query($a: ID!, $b: ID!) { a: organization(id: $a) { id } b: organization(id: $b) { id } }`, { a: org.id, b: starter.id }, { as: owner });
    expectRefusal(both, PRO_LIMIT);
    const counters = await currentCounters(app);
    const key = Object.keys(counters).find((k) => k.endsWith(`@${org.id}`))!;
    expect(key).toMatch(/^user:/);
    expect(counters[key]).toBe(PRO_LIMIT + 3);
    expect(counters[key.replace(org.id, starter.id)]).toBe(2);
    expect(counters[key.slice(0, key.lastIndexOf('@'))]).toBe(1);
  });

  it('a foreign or unknown organization id counts in the user bucket (NOT_FOUND, nothing about the other tenant revealed)', async () => {
    const owner = uniqueEmail('tenant');
    const stranger = uniqueEmail('stranger');
    const org = await createOrganization(app, owner);
    await resetCounters(app);
    const foreign = await app.gql(ORG, { id: org.id }, { as: stranger });
    const unknown = await app.gql(ORG, { id: randomUUID() }, { as: stranger });
    for (const r of [foreign, unknown]) {
      expect(codes(r)).toEqual(['NOT_FOUND']);
      expect(r.headers.get('x-ratelimit-limit')).toBe(String(USER_LIMIT));
    }
    expect(Object.values(await currentCounters(app))).toEqual([2]);
  });

  it('an ENTERPRISE organization (no limit) is never refused', async () => {
    const owner = uniqueEmail('enterprise');
    const org = await createOrganization(app, owner);
    await readAll(app, `UPDATE subscriptions SET plan_key = 'ENTERPRISE', status = 'ACTIVE' WHERE organization_id = $1`, [org.id]);
    const results = await times(PRO_LIMIT + USER_LIMIT, () => app.gql(ORG, { id: org.id }, { as: owner }));
    expect(results.every((r) => r.status === 200 && !r.errors)).toBe(true);
    expect(results[0]!.headers.get('x-ratelimit-limit')).toBeNull();
  });
});

describe('counted outside the request transaction', () => {
  it('a mutation that fails and rolls back is still counted', async () => {
    const owner = uniqueEmail('rollback');
    const org = await createOrganization(app, owner);
    await resetCounters(app);
    // createWorkspace with a slug that is taken: CONFLICT, the savepoint rolls back, no audit event.
    ok(await app.gql(`mutation($org: ID!) { createWorkspace(organizationId: $org, input: { name: "Twin", slug: "twin" }) { id } }`, { org: org.id }, { as: owner }));
    const failed = await app.gql(`mutation($org: ID!) { createWorkspace(organizationId: $org, input: { name: "Twin", slug: "twin" }) { id } }`, { org: org.id }, { as: owner });
    expect(codes(failed)).toEqual(['CONFLICT']);
    const counters = await currentCounters(app);
    expect(Object.entries(counters).filter(([k]) => k.endsWith(`@${org.id}`)).map(([, n]) => n)).toEqual([2]);
    expectRefusal((await times(2, () => app.gql(ORG, { id: org.id }, { as: owner })))[1]!, PRO_LIMIT);
  });

  it('fails open: when the counter cannot count, the request is served', async () => {
    const ada = uniqueEmail('failopen');
    await readAll(app, `ALTER FUNCTION app_rate_limit_hit(text, text, uuid, text[], text[], integer, bytea, uuid, integer) RENAME TO app_rate_limit_hit_gone`);
    try {
      const results = await times(USER_LIMIT + 2, () => app.gql(ME, {}, { as: ada }));
      expect(results.every((r) => r.status === 200 && !r.errors)).toBe(true);
    } finally {
      await readAll(app, `ALTER FUNCTION app_rate_limit_hit_gone(text, text, uuid, text[], text[], integer, bytea, uuid, integer) RENAME TO app_rate_limit_hit`);
    }
    expect(await currentCounters(app)).toEqual({});
  });

  (usesRealPostgres() ? it : it.skip)('runs on the request’s own connection ahead of its BEGIN, outside its transaction; a counter stuck past 1 s fails open', async () => {
    const ada = uniqueEmail('stuck');
    ok(await app.gql(ME, {}, { as: ada }));
    const [bucket] = Object.keys(await currentCounters(app));
    const side = await sideConnection(app, 'rate-limit-test');
    try {
      await side.query('BEGIN');
      await side.query(`SELECT hits FROM rate_limit_counters WHERE key = $1 FOR UPDATE`, [bucket]);
      const started = Date.now();
      const pending = app.gql(ME, {}, { as: ada });
      // The counter waits for the row lock on the request's connection, before that connection's BEGIN:
      // outside any transaction, and with no other session of the service involved.
      let seen: Array<{ application_name: string; state: string; query: string }> = [];
      for (let i = 0; i < 40 && seen.length < 1; i++) {
        await new Promise((r) => setTimeout(r, 25));
        seen = (
          await side.query(
            `SELECT application_name, state, query FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'`,
          )
        ).rows;
      }
      expect(seen).toEqual([{ application_name: 'tenant-service', state: 'active', query: expect.stringContaining('app_rate_limit_hit') }]);
      const result = await pending;
      expect(result.status).toBe(200);
      expect(ok(result).me.user.email).toBe(ada);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(result.headers.get('x-ratelimit-limit')).toBeNull();
    } finally {
      await side.query('ROLLBACK');
      await side.end();
    }
    // The counter that failed left nothing open: the next request is counted again, on top of the first one.
    const next = await app.gql(ME, {}, { as: ada });
    expect(next.headers.get('x-ratelimit-remaining')).toBe(String(USER_LIMIT - 2));
  });
});
