import { randomUUID } from 'node:crypto';
import { codes, startTestApp, type TestApp } from '../../helpers/app';
import { uniqueEmail } from '../../helpers/factories';

/**
 * GET /metrics as Prometheus scrapes it: exact increments of the request and error counters
 * after known requests, the pool gauges against connections the test holds, and the process
 * and event-loop metrics.
 */
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

/** Samples of one exposition: `name{label="value",…}` (labels as exposed) → value. */
type Samples = Map<string, number>;

async function scrape(): Promise<{ samples: Samples; text: string; res: Response }> {
  const res = await fetch(`${app.url}/metrics`);
  const text = await res.text();
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*(?:\{.*\})?) (\S+)$/.exec(line);
    if (!match) throw new Error(`unparsable exposition line: ${line}`);
    samples.set(match[1]!, Number(match[2]));
  }
  return { samples, text, res };
}

/** The key of a sample with these labels, in the order prom-client writes them. */
const key = (name: string, labels: Record<string, string> = {}) => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return parts.length ? `${name}{${parts.join(',')}}` : name;
};
const value = (samples: Samples, name: string, labels: Record<string, string> = {}) => samples.get(key(name, labels)) ?? 0;

/** Every sample of a metric family whose value changed between two scrapes. */
function changes(before: Samples, after: Samples, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of after) {
    if (!k.startsWith(`${name}{`) && k !== name) continue;
    const delta = v - (before.get(k) ?? 0);
    if (delta !== 0) out[k] = delta;
  }
  return out;
}

const post = (body: string, headers: Record<string, string> = {}) =>
  fetch(`${app.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

describe('GET /metrics', () => {
  it('is public, in Prometheus text format', async () => {
    const { res, text } = await scrape();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(text).toContain('# TYPE graphql_requests_total counter');
    expect(text).toContain('# TYPE graphql_request_duration_seconds histogram');
    expect(text).toContain('# TYPE graphql_errors_total counter');
  });

  it('counts each GraphQL request once by operation and outcome, with its latency, and its errors by code', async () => {
    const token = await app.token(uniqueEmail('metrics'));
    const before = (await scrape()).samples;

    for (let i = 0; i < 3; i++) expect(codes(await app.gql('query Who { me { user { id } } }', {}, { token }))).toEqual([]);
    // Not found: the operation ran and answered an error.
    const missing = await app.gql('query FindOrg($id: ID!) { organization(id: $id) { id } }', { id: randomUUID() }, { token });
    expect(codes(missing)).toEqual(['NOT_FOUND']);
    // Refused before GraphQL ran: a bad token (401), a body over 1 MiB (413), malformed JSON (400).
    expect((await post(JSON.stringify({ query: 'query Who { me { user { id } } }' }), { authorization: 'Bearer not.a.jwt' })).status).toBe(401);
    expect((await post(JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(1024 * 1024 + 10) } }))).status).toBe(413);
    expect((await post('{"query": ')).status).toBe(400);
    // Refused by GraphQL: a syntax error (no operation resolved) and an anonymous query over the cost limit.
    expect((await post(JSON.stringify({ query: '{ me { ' }), { authorization: `Bearer ${token}` })).status).toBe(400);
    const tooCostly = await app.gql(
      '{ me { organizations(first: 100) { nodes { workspaces(first: 100) { nodes { organization { members(first: 100) { nodes { id } } } } } } } } }',
      {},
      { token },
    );
    expect(codes(tooCostly)).toEqual(['QUERY_TOO_COMPLEX']);
    // Not GraphQL operations: probes, scrapes, preflights.
    await fetch(`${app.url}/healthz`);
    await fetch(`${app.url}/graphql`, { method: 'OPTIONS', headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'POST' } });

    const after = (await scrape()).samples;
    expect(changes(before, after, 'graphql_requests_total')).toEqual({
      [key('graphql_requests_total', { operation: 'Who', outcome: 'ok' })]: 3,
      [key('graphql_requests_total', { operation: 'FindOrg', outcome: 'error' })]: 1,
      [key('graphql_requests_total', { operation: 'unknown', outcome: 'refused' })]: 4,
      [key('graphql_requests_total', { operation: 'anonymous', outcome: 'refused' })]: 1,
    });
    expect(changes(before, after, 'graphql_errors_total')).toEqual({
      [key('graphql_errors_total', { code: 'NOT_FOUND' })]: 1,
      [key('graphql_errors_total', { code: 'UNAUTHENTICATED' })]: 1,
      [key('graphql_errors_total', { code: 'PAYLOAD_TOO_LARGE' })]: 1,
      [key('graphql_errors_total', { code: 'BAD_REQUEST' })]: 1,
      [key('graphql_errors_total', { code: 'GRAPHQL_PARSE_FAILED' })]: 1,
      [key('graphql_errors_total', { code: 'QUERY_TOO_COMPLEX' })]: 1,
    });
    const who = { operation: 'Who', outcome: 'ok' };
    expect(value(after, 'graphql_request_duration_seconds_count', who) - value(before, 'graphql_request_duration_seconds_count', who)).toBe(3);
    expect(value(after, 'graphql_request_duration_seconds_bucket', { le: '+Inf', ...who }) - value(before, 'graphql_request_duration_seconds_bucket', { le: '+Inf', ...who })).toBe(3);
    expect(value(after, 'graphql_request_duration_seconds_sum', who)).toBeGreaterThan(value(before, 'graphql_request_duration_seconds_sum', who));
  });

  it('reports the request pool: open, idle, waiting and maximum connections', async () => {
    const max = value((await scrape()).samples, 'db_pool_connections_max');
    expect(max).toBe(app.db.embedded ? 1 : 10);
    // Every connection lent out and one more unit of work waiting for one.
    const held = await Promise.all(Array.from({ length: max }, () => app.db.lease()));
    const waiting = app.db.lease();
    try {
      const busy = (await scrape()).samples;
      expect({
        total: value(busy, 'db_pool_connections'),
        idle: value(busy, 'db_pool_connections_idle'),
        waiting: value(busy, 'db_pool_waiting'),
      }).toEqual({ total: max, idle: 0, waiting: 1 });
    } finally {
      await Promise.all(held.map((lease) => lease.done()));
      await (await waiting).done();
    }
    const idle = (await scrape()).samples;
    expect(value(idle, 'db_pool_waiting')).toBe(0);
    expect(value(idle, 'db_pool_connections_idle')).toBe(value(idle, 'db_pool_connections'));
    expect(value(idle, 'db_pool_connections')).toBeGreaterThanOrEqual(1);
    expect(value(idle, 'db_pool_connections')).toBeLessThanOrEqual(max);
  });

  it('exposes process, heap and event-loop-lag metrics', async () => {
    const { samples } = await scrape();
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_p99_seconds']) {
      expect([name, samples.has(name)]).toEqual([name, true]);
    }
    expect(value(samples, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(value(samples, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(value(samples, 'process_start_time_seconds')).toBeLessThanOrEqual(Date.now() / 1000);
  });
});
