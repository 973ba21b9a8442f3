import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { exportJWK, exportSPKI, generateKeyPair, type JWK, type KeyLike, SignJWT } from 'jose';
import { createExternalVerifier } from '../../src/auth/jwt';
import { codes, type GqlResult, startTestApp, type TestApp } from '../helpers/app';
import { readAll } from '../helpers/db';

/** External issuer (SPEC §2): a local JWKS endpoint, real key pairs, hostile tokens. */

const ISSUER = 'https://issuer.test';
const AUDIENCE = 'tenant-api';
const COOLDOWN_MS = 200;
const ME = `{ me { user { id email } } }`;
const INVALID = 'Invalid or expired token';
const BAD_HEADER = 'The Authorization header must be "Bearer <token>"';

let app: TestApp;
let jwksServer: http.Server;
let jwksUrl: string;
let jwks: { keys: JWK[] } = { keys: [] };
let fetches = 0;

interface Pair {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: KeyLike;
  publicKey: KeyLike;
  jwk: JWK;
}
const keys: Record<'rsa1' | 'rsa2' | 'ec1' | 'rogue', Pair> = {} as never;

async function pair(kid: string, alg: 'RS256' | 'ES256'): Promise<Pair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

const now = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

interface TokenOptions {
  key?: Pair;
  /** Header overrides (alg, kid). */
  alg?: string;
  kid?: string;
  secret?: Uint8Array;
  iss?: string;
  aud?: string;
  sub?: string | null;
  exp?: number | null;
  nbf?: number;
  email?: string;
}

/** Default: a valid RS256 token of rsa1 for a fresh subject. */
function claims(o: TokenOptions): Record<string, unknown> {
  const payload: Record<string, unknown> = {
    iss: o.iss ?? ISSUER,
    aud: o.aud ?? AUDIENCE,
    email: o.email ?? `ext-${randomUUID()}@example.com`,
    iat: now() - 5,
    exp: o.exp === undefined ? now() + 600 : o.exp,
    sub: o.sub === undefined ? `ext|${randomUUID()}` : o.sub,
    ...(o.nbf !== undefined ? { nbf: o.nbf } : {}),
  };
  for (const k of ['exp', 'sub']) if (payload[k] === null) delete payload[k];
  return payload;
}

function token(o: TokenOptions = {}): Promise<string> {
  const key = o.key ?? keys.rsa1;
  const alg = o.alg ?? key.alg;
  return new SignJWT(claims(o)).setProtectedHeader({ alg, kid: o.kid ?? key.kid, typ: 'JWT' }).sign(o.secret ?? key.privateKey);
}

const asBearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });

function expectUnauthenticated(result: GqlResult, message = INVALID): void {
  expect(result.status).toBe(401);
  expect(codes(result)).toEqual(['UNAUTHENTICATED']);
  expect(result.errors![0]!.message).toBe(message);
  expect(result.data).toBeNull();
}

beforeAll(async () => {
  keys.rsa1 = await pair('rsa-1', 'RS256');
  keys.rsa2 = await pair('rsa-2', 'RS256');
  keys.ec1 = await pair('ec-1', 'ES256');
  keys.rogue = await pair('rogue', 'RS256');
  jwks = { keys: [keys.rsa1.jwk, keys.ec1.jwk] };
  jwksServer = http.createServer((_req, res) => {
    fetches += 1;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(jwks));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json`;
  app = await startTestApp({
    verifier: createExternalVerifier({ jwksUrl, issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256', 'ES256'], cooldownMs: COOLDOWN_MS }),
  });
});
afterAll(async () => {
  await app?.close();
  await new Promise((resolve) => jwksServer?.close(resolve));
});

describe('external issuer: accepted tokens', () => {
  it('accepts a valid RS256 token and provisions the user with the lower-cased email', async () => {
    const result = await app.gql(ME, {}, asBearer(await token({ email: 'Ext.Mixed-Case@Example.COM' })));
    expect(result.status).toBe(200);
    expect(result.errors).toBeUndefined();
    expect(result.data!.me.user).toEqual({ id: expect.any(String), email: 'ext.mixed-case@example.com' });
  });

  it('accepts a valid ES256 token', async () => {
    const result = await app.gql(ME, {}, asBearer(await token({ key: keys.ec1, email: 'es256@example.com' })));
    expect(result.status).toBe(200);
    expect(result.data!.me.user.email).toBe('es256@example.com');
  });

  it('accepts a token that expired 30 s ago (within the 60 s clock tolerance)', async () => {
    const result = await app.gql(ME, {}, asBearer(await token({ exp: now() - 30, email: 'skew@example.com' })));
    expect(result.status).toBe(200);
    expect(result.data!.me.user.email).toBe('skew@example.com');
  });
});

describe('external issuer: rejected tokens → HTTP 401, UNAUTHENTICATED, nobody provisioned', () => {
  const rejected = (label: string) => `rejected|${label}`;

  it.each(['none', 'NONE', 'None'])('alg: %s (unsigned token crafted by hand)', async (alg) => {
    const unsigned = `${b64url({ alg, typ: 'JWT', kid: 'rsa-1' })}.${b64url(claims({ sub: rejected(`alg-${alg}`) }))}.`;
    expectUnauthenticated(await app.gql(ME, {}, asBearer(unsigned)));
  });

  it('HS256 signed with the issuer public key PEM as the HMAC secret', async () => {
    const secret = new TextEncoder().encode(await exportSPKI(keys.rsa1.publicKey));
    expectUnauthenticated(await app.gql(ME, {}, asBearer(await token({ alg: 'HS256', secret, sub: rejected('hs256-pem') }))));
  });

  it('HS256 signed with the issuer public JWK modulus (n) as the HMAC secret', async () => {
    for (const secret of [new TextEncoder().encode(keys.rsa1.jwk.n!), Buffer.from(keys.rsa1.jwk.n!, 'base64url')]) {
      expectUnauthenticated(await app.gql(ME, {}, asBearer(await token({ alg: 'HS256', secret, sub: rejected('hs256-n') }))));
    }
  });

  it('PS256 with the published RSA key (algorithm not in AUTH_ALGORITHMS)', async () => {
    expectUnauthenticated(await app.gql(ME, {}, asBearer(await token({ alg: 'PS256', sub: rejected('ps256') }))));
  });

  it.each<[string, () => TokenOptions]>([
    ['wrong iss', () => ({ iss: 'https://evil.test' })],
    ['wrong aud', () => ({ aud: 'another-api' })],
    ['expired 10 minutes ago (beyond the 60 s tolerance)', () => ({ exp: now() - 600 })],
    ['not yet valid (nbf in 10 minutes)', () => ({ nbf: now() + 600 })],
    ['missing exp', () => ({ exp: null })],
    ['unknown kid (a key not in the JWKS)', () => ({ key: keys.rogue })],
    ['forged: kid of the published key, signed by another key', () => ({ key: keys.rogue, kid: keys.rsa1.kid })],
  ])('%s', async (label, options) => {
    expectUnauthenticated(await app.gql(ME, {}, asBearer(await token({ ...options(), sub: rejected(label) }))));
  });

  it('missing sub', async () => {
    const email = `nosub-${randomUUID()}@example.com`;
    expectUnauthenticated(await app.gql(ME, {}, asBearer(await token({ sub: null, email }))));
    expect(await readAll(app, `SELECT count(*)::int AS n FROM users WHERE email = $1`, [email])).toEqual([{ n: 0 }]);
  });

  it.each([
    ['Bearer with garbage', 'Bearer not-a-jwt', INVALID],
    ['Bearer with three garbage segments', 'Bearer aaa.bbb.ccc', INVALID],
    ['Bearer without a token', 'Bearer', BAD_HEADER],
    ['Bearer with two tokens', 'Bearer a b', BAD_HEADER],
    ['Basic credentials', 'Basic xyz', BAD_HEADER],
  ])('malformed Authorization header: %s', async (_label, authorization, message) => {
    expectUnauthenticated(await app.gql(ME, {}, { headers: { authorization } }), message);
  });

  it('no Authorization header at all', async () => {
    const result = await app.gql(ME);
    expect(result.status).toBe(401);
    expect(codes(result)).toEqual(['UNAUTHENTICATED']);
  });

  it('provisioned no user for any rejected token', async () => {
    expect(await readAll(app, `SELECT count(*)::int AS n FROM users WHERE subject LIKE 'rejected|%'`)).toEqual([{ n: 0 }]);
  });
});

describe('external issuer: key rotation and refetch rate', () => {
  it('refetches the JWKS for unknown kids at most once per cooldown', async () => {
    await sleep(COOLDOWN_MS + 100);
    const before = fetches;
    const tokens = await Promise.all(Array.from({ length: 10 }, (_, i) => token({ key: keys.rogue, sub: `rejected|burst-${i}` })));
    const results = await Promise.all(tokens.map((t) => app.gql(ME, {}, asBearer(t))));
    for (const r of results) expectUnauthenticated(r);
    expect(fetches - before).toBeGreaterThanOrEqual(1);
    expect(fetches - before).toBeLessThanOrEqual(2);
  });

  it('picks up a rotated key after the cooldown and then rejects the retired one', async () => {
    const old = await token({ key: keys.rsa1, email: 'rotation@example.com', sub: 'ext|rotation' });
    const before = await app.gql(ME, {}, asBearer(old));
    expect(before.status).toBe(200);

    jwks = { keys: [keys.rsa2.jwk, keys.ec1.jwk] }; // key1 replaced by key2
    await sleep(COOLDOWN_MS + 100);
    const fresh = await app.gql(ME, {}, asBearer(await token({ key: keys.rsa2, email: 'rotation@example.com', sub: 'ext|rotation' })));
    expect(fresh.status).toBe(200);
    expect(fresh.data!.me.user).toEqual(before.data!.me.user);

    await sleep(COOLDOWN_MS + 100);
    expectUnauthenticated(await app.gql(ME, {}, asBearer(old)));
  });

  it('by default (no cooldownMs) refetches for an unknown kid at most once per 30 s', async () => {
    jwks = { keys: [keys.rsa1.jwk] };
    const verifier = createExternalVerifier({ jwksUrl, issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'] });
    const before = fetches;
    await expect(verifier.verify(await token({ key: keys.rsa1 }))).resolves.toMatchObject({ emailVerified: false });
    expect(fetches - before).toBe(1);
    jwks = { keys: [keys.rsa1.jwk, keys.rsa2.jwk] };
    for (let i = 0; i < 5; i++) await expect(verifier.verify(await token({ key: keys.rsa2 }))).rejects.toThrow();
    expect(fetches - before).toBe(1);
  });
});
