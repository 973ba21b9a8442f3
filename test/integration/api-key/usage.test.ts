import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll, withAllRows } from '../../helpers/db';
import { createOrganization, type CreatedOrganization, setFeatureFlag, setPlanLimits, uniqueEmail } from '../../helpers/factories';
import { until } from '../../helpers/service-process';
import { CREATE_KEY, createKey, EXCHANGE, exchange } from './api-key-helpers';

/**
 * What surrounds a key's use: the API_KEYS quota, lastUsedAt (coalesced, outside the request
 * transaction), the organization's IP allowlist (MFA and session timeout are for people only),
 * and resolveSecrets (keys with secrets.read only).
 */
let app: TestApp;
let owner: string;
let org: CreatedOrganization;

beforeAll(async () => {
  app = await startTestApp({ env: { TRUSTED_PROXIES: '127.0.0.1/32,::1/128' } });
  owner = uniqueEmail('owner');
  org = await createOrganization(app, owner);
});
afterAll(async () => {
  await app?.close();
});

const ORG_QUERY = `query($id: ID!) { organization(id: $id) { id } }`;
const lastUsed = async (id: string): Promise<Date | null> => (await readAll(app, `SELECT last_used_at FROM api_keys WHERE id = $1`, [id]))[0]!.last_used_at;

describe('the API_KEYS quota', () => {
  it('counts active keys: at the plan’s maxApiKeys the next create is QUOTA_EXCEEDED (nothing stored), a revoked key frees its seat', async () => {
    const mine = await createOrganization(app, owner);
    await setPlanLimits(app, 'PRO', { max_api_keys: 3 });
    const keys = [];
    for (let i = 0; i < 3; i++) keys.push(await createKey(app, mine.id, ['org.view'], { as: owner }));
    const refused = await app.gql(CREATE_KEY, { org: mine.id, input: { name: 'fourth', scopes: ['org.view'] } }, { as: owner });
    expect(codes(refused)).toEqual(['QUOTA_EXCEEDED']);
    expect(refused.errors![0]!.extensions).toMatchObject({ resource: 'API_KEYS', used: 3, limit: 3 });
    expect(await readAll(app, `SELECT count(*)::int AS n FROM api_keys WHERE organization_id = $1`, [mine.id])).toEqual([{ n: 3 }]);
    const quota = ok(await app.gql(`query($id: ID!) { organization(id: $id) { quota { resources { resource used limit } } deletionImpact { apiKeys } } }`, { id: mine.id }, { as: owner }));
    expect(quota.organization.quota.resources.find((u: { resource: string }) => u.resource === 'API_KEYS')).toEqual({ resource: 'API_KEYS', used: 3, limit: 3 });
    expect(quota.organization.deletionImpact.apiKeys).toBe(3);
    ok(await app.gql(`mutation($id: ID!) { revokeApiKey(id: $id) { id } }`, { id: keys[0]!.id }, { as: owner }));
    await createKey(app, mine.id, ['org.view'], { as: owner });
    await setPlanLimits(app, 'PRO', { max_api_keys: 50 });
  });

  it('N concurrent creates against room for k: exactly k pass', async () => {
    const mine = await createOrganization(app, owner);
    await setPlanLimits(app, 'PRO', { max_api_keys: 4 });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => app.gql(CREATE_KEY, { org: mine.id, input: { name: `k${i}`, scopes: ['org.view'] } }, { as: owner })));
    expect(results.filter((r) => !r.errors).length).toBe(4);
    expect(results.filter((r) => r.errors).map((r) => codes(r)[0])).toEqual(Array(6).fill('QUOTA_EXCEEDED'));
    expect(await readAll(app, `SELECT count(*)::int AS n FROM api_keys WHERE organization_id = $1`, [mine.id])).toEqual([{ n: 4 }]);
    await setPlanLimits(app, 'PRO', { max_api_keys: 50 });
  });
});

describe('lastUsedAt', () => {
  it('is set after the first use, moves at most once a minute, written by its own statement after the response', async () => {
    const key = await createKey(app, org.id, ['org.view'], { as: owner });
    expect(await lastUsed(key.id)).toBeNull();
    ok(await app.gql(ORG_QUERY, { id: org.id }, { token: key.secret }));
    await until('lastUsedAt written', async () => (await lastUsed(key.id)) !== null);
    const first = (await lastUsed(key.id))!.getTime();
    for (let i = 0; i < 5; i++) ok(await app.gql(ORG_QUERY, { id: org.id }, { token: key.secret }));
    const token = await exchange(app, key.secret);
    ok(await app.gql(ORG_QUERY, { id: org.id }, { token }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await lastUsed(key.id))!.getTime()).toBe(first);

    // A minute later (moved back in the database; this process's coalescer forgets it, as another instance would not know it).
    await withAllRows(app, (r) => r.query(`UPDATE api_keys SET last_used_at = last_used_at - interval '61 seconds' WHERE id = $1`, [key.id]));
    const older = (await lastUsed(key.id))!.getTime();
    const other = await createKey(app, org.id, ['org.view'], { as: owner });
    // A fresh key's first use is written however recently the other key was.
    ok(await app.gql(ORG_QUERY, { id: org.id }, { token: other.secret }));
    await until('lastUsedAt of the other key', async () => (await lastUsed(other.id)) !== null);
    expect((await lastUsed(key.id))!.getTime()).toBe(older);
  });

  it('does not roll back with the request: a mutation that fails still records the use; Organization.apiKeys shows it', async () => {
    const key = await createKey(app, org.id, ['org.view', 'workspace.view', 'workspace.create'], { as: owner });
    const failed = await app.gql(`mutation($id: ID!) { createWorkspace(organizationId: $id, input: { name: "" }) { id } }`, { id: org.id }, { token: key.secret });
    expect(codes(failed)).toEqual(['BAD_USER_INPUT']);
    await until('lastUsedAt written', async () => (await lastUsed(key.id)) !== null);
    const listed = ok(await app.gql(`query($id: ID!) { organization(id: $id) { apiKeys { id lastUsedAt } } }`, { id: org.id }, { as: owner }));
    expect(listed.organization.apiKeys.find((k: { id: string }) => k.id === key.id).lastUsedAt).toBe((await lastUsed(key.id))!.toISOString());
  });
});

describe('the organization’s security settings', () => {
  it('the IP allowlist applies to keys, their exchange and their tokens; requireMfa and the session timeout do not', async () => {
    const mine = await createOrganization(app, owner);
    await setFeatureFlag(app, mine.id, 'ip_allowlist', true, owner);
    const key = await createKey(app, mine.id, ['org.view', 'workspace.view', 'workspace.create'], { as: owner });
    const token = await exchange(app, key.secret);
    await withAllRows(app, (r) =>
      r.query(`UPDATE organizations SET security = security || $2::jsonb WHERE id = $1`, [mine.id, JSON.stringify({ ipAllowlist: ['203.0.113.0/24'], requireMfa: true, sessionTimeoutMinutes: 1 })]),
    );
    const inside = { 'x-forwarded-for': '203.0.113.9' };
    const outside = { 'x-forwarded-for': '198.51.100.7' };
    for (const bearer of [key.secret, token]) {
      expect(ok(await app.gql(ORG_QUERY, { id: mine.id }, { token: bearer, headers: inside })).organization.id).toBe(mine.id);
      expect(codes(await app.gql(ORG_QUERY, { id: mine.id }, { token: bearer, headers: outside }))).toEqual(['IP_NOT_ALLOWED']);
      expect(codes(await app.gql(`mutation($id: ID!) { createWorkspace(organizationId: $id, input: { name: "x" }) { id } }`, { id: mine.id }, { token: bearer, headers: outside }))).toEqual(['IP_NOT_ALLOWED']);
    }
    expect(await readAll(app, `SELECT count(*)::int AS n FROM workspaces WHERE organization_id = $1`, [mine.id])).toEqual([{ n: 1 }]);
    // No token is handed out where the key itself is refused.
    expect(codes(await app.gql(EXCHANGE, { key: key.secret }, { headers: outside }))).toEqual(['IP_NOT_ALLOWED']);
    expect(ok(await app.gql(EXCHANGE, { key: key.secret }, { headers: inside })).exchangeApiKey.accessToken).toBeTruthy();
    // The owner's single-factor token meets requireMfa, the key does not.
    expect(codes(await app.gql(ORG_QUERY, { id: mine.id }, { as: owner, headers: inside }))).toEqual(['MFA_REQUIRED']);
  });
});

describe('resolveSecrets', () => {
  const SET = `mutation($org: ID!, $ws: ID, $key: String!, $value: String!) { setSecret(organizationId: $org, workspaceId: $ws, key: $key, value: $value) { key } }`;
  const RESOLVE = `query($ws: ID!) { resolveSecrets(workspaceId: $ws) { key value scope } }`;

  it('overlays the organization’s secrets by the workspace’s own; audited with the keys, never the values', async () => {
    const mine = await createOrganization(app, owner);
    const ws = ok(await app.gql(`mutation($id: ID!) { createWorkspace(organizationId: $id, input: { name: "Second" }) { id } }`, { id: mine.id }, { as: owner })).createWorkspace.id;
    ok(await app.gql(SET, { org: mine.id, key: 'API_TOKEN', value: 'org-token-value' }, { as: owner }));
    ok(await app.gql(SET, { org: mine.id, key: 'SHARED', value: 'shared-value' }, { as: owner }));
    ok(await app.gql(SET, { org: mine.id, ws: mine.defaultWorkspaceId, key: 'API_TOKEN', value: 'default-ws-token' }, { as: owner }));
    ok(await app.gql(SET, { org: mine.id, ws, key: 'ONLY_SECOND', value: 'second-only' }, { as: owner }));
    const key = await createKey(app, mine.id, ['workspace.view', 'secrets.read'], { as: owner });

    expect(ok(await app.gql(RESOLVE, { ws: mine.defaultWorkspaceId }, { token: key.secret })).resolveSecrets).toEqual([
      { key: 'API_TOKEN', value: 'default-ws-token', scope: 'WORKSPACE' },
      { key: 'SHARED', value: 'shared-value', scope: 'ORGANIZATION' },
    ]);
    expect(ok(await app.gql(RESOLVE, { ws }, { token: await exchange(app, key.secret) })).resolveSecrets).toEqual([
      { key: 'API_TOKEN', value: 'org-token-value', scope: 'ORGANIZATION' },
      { key: 'ONLY_SECOND', value: 'second-only', scope: 'WORKSPACE' },
      { key: 'SHARED', value: 'shared-value', scope: 'ORGANIZATION' },
    ]);
    const events = await readAll(app, `SELECT actor_type, actor_id, resource_id, metadata::text AS metadata FROM audit_events WHERE organization_id = $1 AND action = 'secrets.resolved' ORDER BY occurred_at`, [mine.id]);
    expect(events).toHaveLength(2);
    expect(events.map((e) => [e.actor_type, e.actor_id, e.resource_id])).toEqual([['API_KEY', key.id, mine.defaultWorkspaceId], ['API_KEY', key.id, ws]]);
    expect(JSON.parse(events[0]!.metadata).keys).toEqual(['API_TOKEN', 'SHARED']);
    for (const e of events) for (const value of ['org-token-value', 'shared-value', 'default-ws-token', 'second-only']) expect(e.metadata).not.toContain(value);
  });

  it('a user is FORBIDDEN (no role holds secrets.read), a key without it FORBIDDEN, another organization’s workspace NOT_FOUND; nothing audited', async () => {
    const mine = await createOrganization(app, owner);
    const before = await readAll(app, `SELECT count(*)::int AS n FROM audit_events WHERE action = 'secrets.resolved'`);
    expect(codes(await app.gql(RESOLVE, { ws: mine.defaultWorkspaceId }, { as: owner }))).toEqual(['FORBIDDEN']);
    const viewer = await createKey(app, mine.id, ['workspace.view', 'org.secrets.manage'], { as: owner });
    expect(codes(await app.gql(RESOLVE, { ws: mine.defaultWorkspaceId }, { token: viewer.secret }))).toEqual(['FORBIDDEN']);
    const reader = await createKey(app, mine.id, ['workspace.view', 'secrets.read'], { as: owner });
    expect(codes(await app.gql(RESOLVE, { ws: org.defaultWorkspaceId }, { token: reader.secret }))).toEqual(['NOT_FOUND']);
    expect(codes(await app.gql(RESOLVE, { ws: mine.defaultWorkspaceId }))).toEqual(['UNAUTHENTICATED']);
    expect(await readAll(app, `SELECT count(*)::int AS n FROM audit_events WHERE action = 'secrets.resolved'`)).toEqual(before);
  });
});

describe('publishNotification', () => {
  it('works for a key with notifications.publish (the audit actor is the key); without the scope it is FORBIDDEN', async () => {
    const mine = await createOrganization(app, owner);
    const publisher = await createKey(app, mine.id, ['org.view', 'notifications.publish'], { as: owner });
    const PUBLISH = `mutation($org: ID!) { publishNotification(organizationId: $org, input: { type: "env.deployed", title: "prod deployed", audience: ALL_MEMBERS }) }`;
    expect(ok(await app.gql(PUBLISH, { org: mine.id }, { token: publisher.secret })).publishNotification).toBe(1);
    const [event] = await readAll(app, `SELECT actor_type, actor_id, actor_name FROM audit_events WHERE organization_id = $1 AND action = 'notification.published'`, [mine.id]);
    expect(event).toEqual({ actor_type: 'API_KEY', actor_id: publisher.id, actor_name: 'ci' });
    const other = await createKey(app, mine.id, ['org.view'], { as: owner });
    expect(codes(await app.gql(PUBLISH, { org: mine.id }, { token: other.secret }))).toEqual(['FORBIDDEN']);
    expect(codes(await app.gql(`mutation { markNotificationsRead }`, {}, { token: publisher.secret }))).toEqual(['FORBIDDEN']);
  });
});

