import { startTestApp, type TestApp } from '../../helpers/app';
import { uniqueEmail } from '../../helpers/factories';

/**
 * GraphQL's POSTs to /graphql are answered without Express (src/http/edge.ts); every other
 * request goes through it. Both roads must give the same answer, headers and refusals.
 */
let app: TestApp;
let token: string;
beforeAll(async () => {
  app = await startTestApp({ env: { CORS_ORIGINS: 'https://app.example.com' } });
  token = await app.token(uniqueEmail('edge'));
});
afterAll(async () => {
  await app?.close();
});

const QUERY = '{ permissionCatalog { code } }';
const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${app.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers }, body });

describe('the HTTP edge: GraphQL POSTs without Express, everything else through it', () => {
  it('answers POST /graphql (direct) and POST /graphql/ (through Express) alike: body, status, headers', async () => {
    const answers = [];
    for (const path of ['/graphql', '/graphql/', '/graphql?trace=no']) {
      const res = await post(path, JSON.stringify({ query: QUERY }), { origin: 'https://app.example.com', 'x-request-id': `edge-${path.length}` });
      const text = await res.text();
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(res.headers.get('content-length')).toBe(String(Buffer.byteLength(text)));
      expect(res.headers.get('x-request-id')).toBe(`edge-${path.length}`);
      expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
      expect(res.headers.get('access-control-expose-headers')).toContain('x-request-id');
      expect(res.headers.get('x-powered-by')).toBeNull();
      answers.push(JSON.parse(text));
    }
    expect(answers[0].data.permissionCatalog).toHaveLength(27);
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
  });

  it('refuses malformed JSON with 400 BAD_REQUEST on both roads, and a body over 1 MiB with 413', async () => {
    for (const path of ['/graphql', '/graphql/']) {
      const malformed = await post(path, '{"query": ');
      expect(malformed.status).toBe(400);
      expect(malformed.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      expect(((await malformed.json()) as any).errors.map((e: any) => e.extensions.code)).toEqual(['BAD_REQUEST']);
      const large = await post(path, JSON.stringify({ query: QUERY, variables: { pad: 'x'.repeat(1024 * 1024 + 10) } }));
      expect(large.status).toBe(413);
      expect(((await large.json()) as any).errors.map((e: any) => e.extensions.code)).toEqual(['PAYLOAD_TOO_LARGE']);
    }
  });

  it('refuses a NUL in a POST query string with BAD_USER_INPUT, as in its body', async () => {
    for (const path of ['/graphql?x=a%00b', '/graphql/?x=a%00b', '/graphql?a%00=1']) {
      const res = await post(path, JSON.stringify({ query: QUERY }));
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ errors: [{ message: 'Input must not contain NUL characters', extensions: { code: 'BAD_USER_INPUT' } }] });
    }
  });

  it('lets Apollo refuse a POST that is not JSON (CSRF prevention), on the direct road too', async () => {
    const res = await fetch(`${app.url}/graphql`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: QUERY });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers a CORS preflight at the edge and still routes the rest through Express (404 with a request id)', async () => {
    const preflight = await fetch(`${app.url}/graphql`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    const missing = await fetch(`${app.url}/no-such-route`, { headers: { 'x-request-id': 'edge-404' } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-request-id')).toBe('edge-404');
    const head = await fetch(`${app.url}/healthz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
  });
});
