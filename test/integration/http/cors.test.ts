import { startTestApp, type TestApp } from '../../helpers/app';

let app: TestApp;
let listed: TestApp;
beforeAll(async () => {
  app = await startTestApp();
  listed = await startTestApp({ env: { CORS_ORIGINS: 'https://app.example.com, https://admin.example.com:8443' } });
});
afterAll(async () => {
  await app?.close();
  await listed?.close();
});

const preflight = (base: string, origin: string) =>
  fetch(`${base}/graphql`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, x-request-id' },
  });

describe('CORS (SPEC §7)', () => {
  it('answers a preflight from an allowed origin, without credentials mode', async () => {
    const res = await preflight(listed.url, 'https://app.example.com');
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(res.headers.get('access-control-allow-headers')).toBe('authorization,content-type,x-request-id');
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    expect(res.headers.get('vary')).toMatch(/origin/i);
  });

  it('gives a foreign origin no CORS headers, and never a 500', async () => {
    for (const origin of ['https://evil.example.com', 'https://app.example.com.evil.com', 'http://localhost:3000', 'null']) {
      const res = await preflight(listed.url, origin);
      expect(res.status).toBeLessThan(500);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(res.headers.get('access-control-allow-headers')).toBeNull();
    }
  });

  it('sets Access-Control-Allow-Origin on a real POST from an allowed origin only', async () => {
    const post = (origin: string) =>
      fetch(`${listed.url}/graphql`, { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ __typename }' }) });
    const allowed = await post('https://admin.example.com:8443');
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://admin.example.com:8443');
    expect(allowed.headers.get('access-control-expose-headers')).toBe('x-request-id,retry-after,x-ratelimit-limit,x-ratelimit-remaining,x-ratelimit-reset');
    const refused = await post('https://evil.example.com');
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('allows any localhost / 127.0.0.1 port by default outside production, nothing else', async () => {
    for (const origin of ['http://localhost:5173', 'http://127.0.0.1:3000', 'http://localhost']) {
      expect((await preflight(app.url, origin)).headers.get('access-control-allow-origin')).toBe(origin);
    }
    for (const origin of ['https://localhost:5173', 'http://localhost.evil.com', 'https://app.example.com']) {
      expect((await preflight(app.url, origin)).headers.get('access-control-allow-origin')).toBeNull();
    }
  });
});
