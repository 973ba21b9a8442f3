import { createRemoteJWKSet, decodeProtectedHeader, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { SERVICE_AUDIENCE, SERVICE_ISSUER, serviceKeyring, SIGNING_KEY_MAX_AGE_DAYS, SIGNING_KEY_OVERLAP_SECONDS } from '../../../src/auth/service-tokens';
import { TenantTransaction } from '../../../src/database/tenant-transaction';
import { ANONYMOUS } from '../../../src/auth/principal';
import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll, withAllRows } from '../../helpers/db';
import { createOrganization, type CreatedOrganization, uniqueEmail } from '../../helpers/factories';
import { createKey, EXCHANGE, exchange } from './api-key-helpers';

let app: TestApp;
let owner: string;
let org: CreatedOrganization;

beforeAll(async () => {
  app = await startTestApp();
  owner = uniqueEmail('owner');
  org = await createOrganization(app, owner);
});
afterAll(async () => {
  await app?.close();
});

const ORG_QUERY = `query($id: ID!) { organization(id: $id) { id } }`;

describe('exchangeApiKey', () => {
  it('trades a key for a 15-minute JWT that an independent jose verifier accepts through GET /.well-known/jwks.json', async () => {
    const key = await createKey(app, org.id, ['org.view', 'workspace.view'], { as: owner });
    const before = Date.now();
    const result = ok(await app.gql(EXCHANGE, { key: key.secret }));
    const { accessToken, tokenType, expiresAt, scopes } = result.exchangeApiKey;
    expect(tokenType).toBe('Bearer');
    expect(scopes).toEqual(['org.view', 'workspace.view']);
    expect(Date.parse(expiresAt) - before).toBeGreaterThan(14 * 60_000);
    expect(Date.parse(expiresAt) - before).toBeLessThanOrEqual(15 * 60_000 + 1000);

    const jwks = createRemoteJWKSet(new URL(`${app.url}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(accessToken, jwks, { issuer: SERVICE_ISSUER, audience: SERVICE_AUDIENCE, algorithms: ['ES256'] });
    expect(payload).toMatchObject({ sub: `apikey:${key.id}`, org: org.id, scopes: ['org.view', 'workspace.view'] });
    expect(payload.exp! - payload.iat!).toBe(15 * 60);
    expect(protectedHeader.kid).toBeTruthy();

    const res = await fetch(`${app.url}/.well-known/jwks.json`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { keys: Array<Record<string, unknown>> };
    expect(body.keys.map((k) => k.kid)).toContain(protectedHeader.kid);
    for (const k of body.keys) expect(k).not.toHaveProperty('d');
  });

  it('the access token works as the bearer, with exactly the key’s scopes', async () => {
    const key = await createKey(app, org.id, ['org.view'], { as: owner });
    const token = await exchange(app, key.secret);
    expect(ok(await app.gql(ORG_QUERY, { id: org.id }, { token })).organization.id).toBe(org.id);
    expect(codes(await app.gql(`query($id: ID!) { organization(id: $id) { settings { timezone } } }`, { id: org.id }, { token }))).toEqual(['FORBIDDEN']);
  });

  it('an unknown, malformed or revoked key cannot be exchanged (UNAUTHENTICATED, HTTP 401)', async () => {
    const key = await createKey(app, org.id, ['org.view'], { as: owner });
    ok(await app.gql(`mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }`, { id: key.id }, { as: owner }));
    for (const secret of [key.secret, 'tsk_' + 'B'.repeat(43), 'nonsense']) {
      const result = await app.gql(EXCHANGE, { key: secret });
      expect(result.status).toBe(401);
      expect(codes(result)).toEqual(['UNAUTHENTICATED']);
    }
  });
});

describe('forged access tokens', () => {
  it('a token claiming the service as issuer but signed by another key, with alg none, expired, or for another audience is UNAUTHENTICATED (401)', async () => {
    const key = await createKey(app, org.id, ['org.view'], { as: owner });
    const genuine = await exchange(app, key.secret);
    const { kid } = decodeProtectedHeader(genuine);
    const { privateKey } = await generateKeyPair('ES256');
    const now = Math.floor(Date.now() / 1000);
    const claims = { org: org.id, scopes: ['org.view'] };
    const sign = (payload: Record<string, unknown>, options: { aud?: string; exp?: number } = {}) =>
      new SignJWT(payload)
        .setProtectedHeader({ alg: 'ES256', kid })
        .setIssuer(SERVICE_ISSUER)
        .setAudience(options.aud ?? SERVICE_AUDIENCE)
        .setSubject(`apikey:${key.id}`)
        .setIssuedAt(now)
        .setExpirationTime(options.exp ?? now + 600)
        .sign(privateKey);
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', kid })).toString('base64url')}.${Buffer.from(JSON.stringify({ ...claims, iss: SERVICE_ISSUER, aud: SERVICE_AUDIENCE, sub: `apikey:${key.id}`, exp: now + 600 })).toString('base64url')}.`;
    const [header, , signature] = genuine.split('.');
    const otherSub = `${header}.${Buffer.from(JSON.stringify({ ...claims, iss: SERVICE_ISSUER, aud: SERVICE_AUDIENCE, sub: 'apikey:00000000-0000-4000-8000-000000000000', exp: now + 600 })).toString('base64url')}.${signature}`;
    for (const token of [await sign(claims), unsigned, otherSub]) {
      const result = await app.gql(ORG_QUERY, { id: org.id }, { token });
      expect(result.status).toBe(401);
      expect(codes(result)).toEqual(['UNAUTHENTICATED']);
    }
    ok(await app.gql(ORG_QUERY, { id: org.id }, { token: genuine }));
  });
});

describe('revocation, expiry and the organization’s state apply at once, to the key and its tokens', () => {
  it('revoking the key makes the key and an exchanged token UNAUTHENTICATED on the very next request; audited api_key.revoked', async () => {
    const key = await createKey(app, org.id, ['org.view'], { as: owner });
    const token = await exchange(app, key.secret);
    ok(await app.gql(ORG_QUERY, { id: org.id }, { token }));
    ok(await app.gql(ORG_QUERY, { id: org.id }, { token: key.secret }));
    const revoked = ok(await app.gql(`mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }`, { id: key.id }, { as: owner }));
    expect(revoked.revokeApiKey.revokedAt).toBeTruthy();
    for (const bearer of [token, key.secret]) {
      const result = await app.gql(ORG_QUERY, { id: org.id }, { token: bearer });
      expect(result.status).toBe(401);
      expect(codes(result)).toEqual(['UNAUTHENTICATED']);
    }
    const again = await app.gql(`mutation($id: ID!) { revokeApiKey(id: $id) { id } }`, { id: key.id }, { as: owner });
    expect(codes(again)).toEqual(['PRECONDITION_FAILED']);
    expect(again.errors![0]!.extensions).toMatchObject({ reason: 'API_KEY_REVOKED' });
    const events = await readAll(app, `SELECT action FROM audit_events WHERE organization_id = $1 AND resource_id = $2 ORDER BY occurred_at`, [org.id, key.id]);
    expect(events.map((e) => e.action)).toEqual(['api_key.created', 'api_key.revoked']);
    const listed = ok(await app.gql(`query($id: ID!) { organization(id: $id) { active: apiKeys { id } all: apiKeys(includeRevoked: true) { id } } }`, { id: org.id }, { as: owner }));
    expect(listed.organization.active.map((k: { id: string }) => k.id)).not.toContain(key.id);
    expect(listed.organization.all.map((k: { id: string }) => k.id)).toContain(key.id);
  });

  it('an expired key and its token are UNAUTHENTICATED', async () => {
    const key = await createKey(app, org.id, ['org.view'], { as: owner });
    const token = await exchange(app, key.secret);
    await withAllRows(app, (r) => r.query(`UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1`, [key.id]));
    for (const bearer of [token, key.secret]) expect(codes(await app.gql(ORG_QUERY, { id: org.id }, { token: bearer }))).toEqual(['UNAUTHENTICATED']);
    expect(codes(await app.gql(EXCHANGE, { key: key.secret }))).toEqual(['UNAUTHENTICATED']);
  });

  it('keys of a suspended or deleted organization are UNAUTHENTICATED, and work again once it is active', async () => {
    const mine = await createOrganization(app, owner);
    const key = await createKey(app, mine.id, ['org.view'], { as: owner });
    const token = await exchange(app, key.secret);
    await withAllRows(app, (r) => r.query(`UPDATE subscriptions SET status = 'SUSPENDED' WHERE organization_id = $1`, [mine.id]));
    for (const bearer of [token, key.secret]) expect(codes(await app.gql(ORG_QUERY, { id: mine.id }, { token: bearer }))).toEqual(['UNAUTHENTICATED']);
    await withAllRows(app, (r) => r.query(`UPDATE subscriptions SET status = 'TRIALING' WHERE organization_id = $1`, [mine.id]));
    ok(await app.gql(ORG_QUERY, { id: mine.id }, { token }));
    const [org2] = await readAll(app, `SELECT slug FROM organizations WHERE id = $1`, [mine.id]);
    ok(await app.gql(`mutation($id: ID!, $slug: String!) { deleteOrganization(id: $id, confirmSlug: $slug) { status } }`, { id: mine.id, slug: org2!.slug }, { as: owner }));
    for (const bearer of [token, key.secret]) expect(codes(await app.gql(ORG_QUERY, { id: mine.id }, { token: bearer }))).toEqual(['UNAUTHENTICATED']);
    const impact = await readAll(app, `SELECT count(*)::int AS n FROM api_keys WHERE organization_id = $1`, [mine.id]);
    expect(impact).toEqual([{ n: 1 }]);
  });
});

describe('signing keys', () => {
  it('are stored with the private half sealed (never a JWK "d" in clear), and rotation overlaps: old tokens verify until the old key retires, new tokens use the new key', async () => {
    const key = await createKey(app, org.id, ['org.view'], { as: owner });
    const oldToken = await exchange(app, key.secret);
    const oldKid = decodeProtectedHeader(oldToken).kid;
    const rows = await readAll(app, `SELECT kid, public_jwk::text AS public_jwk, encode(sealed_private_key, 'escape') AS sealed FROM service_signing_keys`);
    for (const row of rows) {
      expect(JSON.parse(row.public_jwk)).not.toHaveProperty('d');
      expect(row.sealed).not.toContain('"d"');
    }

    const keyring = serviceKeyring(app.db, app.envelope);
    const newKid = await TenantTransaction.run(app.db, ANONYMOUS, 'test:rotate', (tx) => keyring.rotate(tx.query));
    expect(newKid).not.toBe(oldKid);
    const newToken = await exchange(app, key.secret);
    expect(decodeProtectedHeader(newToken).kid).toBe(newKid);
    // Both verify during the overlap, with the service and with an independent verifier.
    const jwks = createRemoteJWKSet(new URL(`${app.url}/.well-known/jwks.json`));
    for (const token of [oldToken, newToken]) {
      ok(await app.gql(ORG_QUERY, { id: org.id }, { token }));
      await jwtVerify(token, jwks, { issuer: SERVICE_ISSUER, audience: SERVICE_AUDIENCE });
    }
    const [retiring] = await readAll(app, `SELECT extract(epoch FROM retires_at - now())::int AS left FROM service_signing_keys WHERE kid = $1`, [oldKid]);
    expect(retiring!.left).toBeGreaterThan(SIGNING_KEY_OVERLAP_SECONDS - 30);
    expect(retiring!.left).toBeLessThanOrEqual(SIGNING_KEY_OVERLAP_SECONDS);

    // Once the overlap is over, the old key verifies nothing (also for a token verified before) and leaves the JWKS.
    await withAllRows(app, (r) => r.query(`UPDATE service_signing_keys SET retires_at = now() - interval '1 second' WHERE kid = $1`, [oldKid]));
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const res = await fetch(`${app.url}/.well-known/jwks.json`);
    expect(((await res.json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid)).toEqual([newKid]);
    const refused = await app.gql(ORG_QUERY, { id: org.id }, { token: oldToken });
    expect(refused.status).toBe(401);
    ok(await app.gql(ORG_QUERY, { id: org.id }, { token: newToken }));
  });

  it('rotate by age: once the signing key is older than SIGNING_KEY_MAX_AGE_DAYS the next exchange rotates it; tokens of the old key still verify', async () => {
    const key = await createKey(app, org.id, ['org.view'], { as: owner });
    const before = await exchange(app, key.secret);
    const oldKid = decodeProtectedHeader(before).kid;
    await withAllRows(app, (r) => r.query(`UPDATE service_signing_keys SET created_at = now() - make_interval(days => $2) WHERE kid = $1`, [oldKid, SIGNING_KEY_MAX_AGE_DAYS + 1]));
    const after = await exchange(app, key.secret);
    const newKid = decodeProtectedHeader(after).kid;
    expect(newKid).not.toBe(oldKid);
    expect(decodeProtectedHeader(await exchange(app, key.secret)).kid).toBe(newKid);
    for (const token of [before, after]) ok(await app.gql(ORG_QUERY, { id: org.id }, { token }));
    const [old] = await readAll(app, `SELECT retires_at IS NOT NULL AS retiring FROM service_signing_keys WHERE kid = $1`, [oldKid]);
    expect(old).toEqual({ retiring: true });
  });
});

