import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DevIssuer } from '../../../src/auth/dev-issuer';
import { createLogger } from '../../../src/common/logging';
import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { createOrganization, uniqueEmail } from '../../helpers/factories';

/** Every line the service logged during this file. */
const lines: string[] = [];
const logged = () => lines.map((l) => JSON.parse(l) as Record<string, any>);
const requestLines = (requestId: string) => logged().filter((l) => l.msg === 'request' && l.requestId === requestId);

let app: TestApp;
const otherDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenant-other-key-'));
beforeAll(async () => {
  app = await startTestApp({ logger: createLogger('info', { write: (line: string) => void lines.push(line) }) });
});
afterAll(async () => {
  await app?.close();
  fs.rmSync(otherDir, { recursive: true, force: true });
});

const rid = () => `log-${crypto.randomBytes(6).toString('hex')}`;
const post = (requestId: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${app.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': requestId, ...headers }, body });

/** The request's single log line (waits for the response's finish event). */
async function lineFor(requestId: string): Promise<Record<string, any>> {
  for (let i = 0; i < 50 && requestLines(requestId).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 20));
  const found = requestLines(requestId);
  expect(found).toHaveLength(1);
  return found[0]!;
}

describe('request log: exactly one line per request', () => {
  it('a GraphQL request: operation, principal, error codes, statement count', async () => {
    const email = uniqueEmail('logged');
    const token = await app.token(email);
    const id = rid();
    const res = await post(id, JSON.stringify({ query: 'query Who { me { user { id } } }' }), { authorization: `Bearer ${token}` });
    const body = (await res.json()) as { data: { me: { user: { id: string } } } };
    const line = await lineFor(id);
    expect(line).toMatchObject({ method: 'POST', path: '/graphql', status: 200, operation: 'Who', principal: body.data.me.user.id, errors: [] });
    expect(line.queries).toBeGreaterThan(0);
    expect(typeof line.durationMs).toBe('number');
    expect(lines.join('\n')).not.toContain(token);
  });

  it.each([
    ['expired', async () => `Bearer ${await app.issuer.sign({ email: uniqueEmail('old'), ttlSeconds: -3600 })}`],
    ['bad signature', async () => `Bearer ${await (await DevIssuer.load(otherDir)).sign({ email: uniqueEmail('forged') })}`],
    ['malformed header', async () => `Basic ${Buffer.from('a:b').toString('base64')}`],
    ['malformed token', async () => 'Bearer not.a.jwt'],
  ])('a refused token (%s): 401 with the reason, never the token', async (reason, header) => {
    const authorization = await header();
    const id = rid();
    const res = await post(id, JSON.stringify({ query: '{ me { user { id } } }' }), { authorization });
    expect(res.status).toBe(401);
    expect(await lineFor(id)).toMatchObject({ status: 401, reason, path: '/graphql' });
    expect(lines.join('\n')).not.toContain(authorization.split(' ')[1]!);
  });

  it('a body over 1 MiB: 413', async () => {
    const id = rid();
    const res = await post(id, JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(1024 * 1024 + 10) } }));
    expect(res.status).toBe(413);
    expect(await lineFor(id)).toMatchObject({ status: 413, reason: 'payload too large' });
  });

  it('malformed JSON: 400', async () => {
    const id = rid();
    const res = await post(id, '{"query": ');
    expect(res.status).toBe(400);
    expect(await lineFor(id)).toMatchObject({ status: 400, reason: 'entity.parse.failed' });
  });

  it('NUL in the variables: 400', async () => {
    const id = rid();
    const res = await post(id, JSON.stringify({ query: 'query($s: String) { organization(slug: $s) { id } }', variables: { s: 'a\u0000b' } }));
    expect(res.status).toBe(400);
    expect(await lineFor(id)).toMatchObject({ status: 400, reason: 'NUL character' });
  });

  it('a GraphQL syntax error and a health probe', async () => {
    const id = rid();
    await post(id, JSON.stringify({ query: '{ me { ' }));
    expect(await lineFor(id)).toMatchObject({ status: 400, errors: ['GRAPHQL_PARSE_FAILED'] });
    const probe = rid();
    await fetch(`${app.url}/healthz`, { headers: { 'x-request-id': probe } });
    expect(await lineFor(probe)).toMatchObject({ method: 'GET', path: '/healthz', status: 200 });
  });
});

describe('logged database errors hold no SQL parameters, tokens or secrets', () => {
  const marker = `Leaky${crypto.randomBytes(6).toString('hex')}`;
  const secret = `AKIA${crypto.randomBytes(10).toString('hex').toUpperCase()}`;
  const fn = `test_env_boom_${crypto.randomBytes(4).toString('hex')}`;
  const sql = (text: string) => app.db.withConnection((r) => r.query(text));
  beforeAll(async () => {
    // Fails like PostgreSQL's own errors do: the value quoted in the message, the key in the detail.
    await sql(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'environment "%" refused', NEW.name USING DETAIL = format('Key (name)=(%s) already exists.', NEW.name), ERRCODE = '23505';
      END $$`);
    await sql(`CREATE TRIGGER ${fn} BEFORE INSERT ON environments FOR EACH ROW EXECUTE FUNCTION ${fn}()`);
  });
  afterAll(async () => {
    await sql(`DROP TRIGGER IF EXISTS ${fn} ON environments`);
    await sql(`DROP FUNCTION IF EXISTS ${fn}()`);
  });

  it('logs type, redacted message, SQLSTATE and stack only', async () => {
    const email = uniqueEmail(`owner${marker}`);
    const org = await createOrganization(app, email);
    const token = await app.token(email);
    const result = await app.gql(
      `mutation($w: ID!, $input: CreateEnvironmentInput!) { createEnvironment(workspaceId: $w, input: $input) { id } }`,
      { w: org.defaultWorkspaceId, input: { name: marker, slug: marker.toLowerCase(), tier: 'DEV', resources: { cpu: 1, ramMb: 512, diskGb: 1 }, cloudCredentials: { accessKeyId: secret, secretAccessKey: secret } } },
      { token },
    );
    expect(codes(result)).toEqual(['INTERNAL_SERVER_ERROR']);
    await new Promise((r) => setTimeout(r, 50));
    const errors = logged().filter((l) => l.level >= 50 && l.requestId === result.headers.get('x-request-id'));
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]!.err).toMatchObject({ type: expect.any(String), code: '23505', message: expect.stringContaining('environment "[redacted]" refused') });
    const text = lines.join('\n');
    for (const leak of [marker, marker.toLowerCase(), secret, email, token, 'parameters', 'Key (name)']) expect(text).not.toContain(leak);
    ok(await app.gql(`{ me { user { id } } }`, {}, { token }));
  });
});
