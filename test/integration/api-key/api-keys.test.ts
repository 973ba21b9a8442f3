import { createHash } from 'node:crypto';
import { createLogger } from '../../../src/common/logging';
import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll, withAllRows } from '../../helpers/db';
import { addMember, createOrganization, type CreatedOrganization, setFeatureFlag, uniqueEmail } from '../../helpers/factories';
import { CREATE_KEY, createKey } from './api-key-helpers';

let app: TestApp;
let owner: string;
let org: CreatedOrganization;
let other: CreatedOrganization;

/** Every line the service logged during this file. */
const lines: string[] = [];
const requestLine = async (requestId: string): Promise<Record<string, any>> => {
  const find = () => lines.map((l) => JSON.parse(l) as Record<string, any>).filter((l) => l.msg === 'request' && l.requestId === requestId);
  for (let i = 0; i < 50 && find().length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  expect(find()).toHaveLength(1);
  return find()[0]!;
};

beforeAll(async () => {
  app = await startTestApp({ logger: createLogger('info', { write: (line: string) => void lines.push(line) }) });
  owner = uniqueEmail('owner');
  org = await createOrganization(app, owner);
  other = await createOrganization(app, uniqueEmail('other-owner'));
});
afterAll(async () => {
  await app?.close();
});

const ORG_QUERY = `query($id: ID!) { organization(id: $id) { id name workspaces { nodes { id } } } }`;

describe('createApiKey', () => {
  it('returns the secret once, stores only its SHA-256, lists the key without it, audits api_key.created with the creator as actor', async () => {
    const result = ok(await app.gql(CREATE_KEY, { org: org.id, input: { name: 'deploy', description: 'CI', scopes: ['org.view', 'workspace.view'], expiresInDays: 30 } }, { as: owner }));
    const { secret, apiKey } = result.createApiKey;
    expect(secret).toMatch(/^tsk_[A-Za-z0-9_-]{43}$/);
    expect(apiKey).toMatchObject({ name: 'deploy', scopes: ['org.view', 'workspace.view'], lastUsedAt: null, revokedAt: null, createdBy: { email: owner } });
    expect(secret.startsWith(apiKey.prefix)).toBe(true);
    expect(apiKey.prefix.length).toBe(12);
    const days = (Date.parse(apiKey.expiresAt) - Date.parse(apiKey.createdAt)) / 86_400_000;
    expect(days).toBeCloseTo(30, 3);

    const rows = await readAll(app, `SELECT encode(secret_hash, 'hex') AS hash, row_to_json(k)::text AS json FROM api_keys k WHERE id = $1`, [apiKey.id]);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.hash).toBe(createHash('sha256').update(secret).digest('hex'));
    expect(rows[0]!.json).not.toContain(secret);
    expect(rows[0]!.json).not.toContain(secret.slice(12));

    const listed = ok(await app.gql(`query($id: ID!) { organization(id: $id) { apiKeys { id name prefix scopes } } }`, { id: org.id }, { as: owner }));
    expect(listed.organization.apiKeys).toEqual(expect.arrayContaining([{ id: apiKey.id, name: 'deploy', prefix: apiKey.prefix, scopes: ['org.view', 'workspace.view'] }]));
    expect(JSON.stringify(listed)).not.toContain(secret);

    const audit = await readAll(app, `SELECT action, actor_type, actor_email, metadata::text AS metadata FROM audit_events WHERE organization_id = $1 AND resource_id = $2`, [org.id, apiKey.id]);
    expect(audit).toEqual([expect.objectContaining({ action: 'api_key.created', actor_type: 'USER', actor_email: owner })]);
    expect(audit[0]!.metadata).not.toContain(secret.slice(12));
  });

  it('defaults the lifetime to the organization maximum and refuses beyond it (BAD_USER_INPUT, nothing stored)', async () => {
    ok(await app.gql(`mutation($id: ID!) { updateOrganization(id: $id, input: { security: { apiKeyMaxLifetimeDays: 90 } }) { id } }`, { id: org.id }, { as: owner }));
    const key = ok(await app.gql(CREATE_KEY, { org: org.id, input: { name: 'default-life', scopes: ['org.view'] } }, { as: owner })).createApiKey.apiKey;
    expect((Date.parse(key.expiresAt) - Date.parse(key.createdAt)) / 86_400_000).toBeCloseTo(90, 3);
    const before = await readAll(app, `SELECT count(*)::int AS n FROM api_keys WHERE organization_id = $1`, [org.id]);
    for (const days of [91, 0, -1]) {
      const refused = await app.gql(CREATE_KEY, { org: org.id, input: { name: 'too-long', scopes: ['org.view'], expiresInDays: days } }, { as: owner });
      expect(codes(refused)).toEqual(['BAD_USER_INPUT']);
      expect(refused.errors![0]!.extensions).toMatchObject({ field: 'expiresInDays' });
    }
    expect(await readAll(app, `SELECT count(*)::int AS n FROM api_keys WHERE organization_id = $1`, [org.id])).toEqual(before);
    ok(await app.gql(`mutation($id: ID!) { updateOrganization(id: $id, input: { security: { apiKeyMaxLifetimeDays: 365 } }) { id } }`, { id: org.id }, { as: owner }));
  });

  it('refuses unknown scopes and an empty list (BAD_USER_INPUT, field scopes)', async () => {
    for (const scopes of [['org.view', 'no.such.permission'], []]) {
      const refused = await app.gql(CREATE_KEY, { org: org.id, input: { name: 'x', scopes } }, { as: owner });
      expect(codes(refused)).toEqual(['BAD_USER_INPUT']);
      expect(refused.errors![0]!.extensions).toMatchObject({ field: 'scopes' });
    }
  });

  it('scopes are a subset of the creator’s permissions: an admin may not grant org.delete, a member cannot create keys at all', async () => {
    const admin = uniqueEmail('admin');
    const member = uniqueEmail('member');
    await addMember(app, org.id, admin, 'admin');
    await addMember(app, org.id, member, 'member');
    const escalation = await app.gql(CREATE_KEY, { org: org.id, input: { name: 'x', scopes: ['org.view', 'org.delete'] } }, { as: admin });
    expect(codes(escalation)).toEqual(['FORBIDDEN']);
    ok(await app.gql(CREATE_KEY, { org: org.id, input: { name: 'admin-key', scopes: ['org.view', 'org.audit.view'] } }, { as: admin }));
    expect(codes(await app.gql(CREATE_KEY, { org: org.id, input: { name: 'x', scopes: ['org.view'] } }, { as: member }))).toEqual(['FORBIDDEN']);
  });

  it('machine-only scopes: secrets.read needs org.secrets.manage, notifications.publish needs org.settings.update; no role can hold them', async () => {
    const key = await createKey(app, org.id, ['secrets.read', 'notifications.publish', 'workspace.view'], { as: owner });
    expect(key.scopes).toEqual(['notifications.publish', 'secrets.read', 'workspace.view']);
    const roleWithMachineScope = await app.gql(
      `mutation($org: ID!) { createRole(organizationId: $org, input: { key: "reader", name: "Reader", permissions: ["org.view", "secrets.read"] }) { id } }`,
      { org: org.id },
      { as: owner },
    );
    expect(codes(roleWithMachineScope)).toEqual(['BAD_USER_INPUT']);
    expect(roleWithMachineScope.errors![0]!.extensions).toMatchObject({ field: 'permissions' });
    // A key manager without org.secrets.manage / org.settings.update cannot hand out what derives from them.
    await withAllRows(app, (r) => r.query(`INSERT INTO roles (organization_id, key, name, permissions) VALUES ($1, 'key_manager', 'Key manager', '{org.view,org.api_keys.manage,workspace.view}')`, [org.id]));
    const manager = uniqueEmail('key-manager');
    await addMember(app, org.id, manager, 'key_manager');
    for (const scope of ['secrets.read', 'notifications.publish']) {
      expect(codes(await app.gql(CREATE_KEY, { org: org.id, input: { name: 'x', scopes: ['org.view', scope] } }, { as: manager }))).toEqual(['FORBIDDEN']);
    }
    expect((await createKey(app, org.id, ['org.view', 'workspace.view'], { as: manager })).scopes).toEqual(['org.view', 'workspace.view']);
  });

  it('a key creating a key: within its own scopes only (beyond: FORBIDDEN, nothing stored); the actor of its actions is the key', async () => {
    const parent = await createKey(app, org.id, ['org.view', 'org.api_keys.manage', 'workspace.view'], { as: owner });
    const child = await createKey(app, org.id, ['org.view', 'workspace.view'], { token: parent.secret });
    expect(child.scopes).toEqual(['org.view', 'workspace.view']);
    const before = await readAll(app, `SELECT count(*)::int AS n FROM api_keys WHERE organization_id = $1`, [org.id]);
    for (const scopes of [['org.view', 'org.settings.update'], ['secrets.read'], ['org.delete']]) {
      expect(codes(await app.gql(CREATE_KEY, { org: org.id, input: { name: 'escalate', scopes } }, { token: parent.secret }))).toEqual(['FORBIDDEN']);
    }
    expect(await readAll(app, `SELECT count(*)::int AS n FROM api_keys WHERE organization_id = $1`, [org.id])).toEqual(before);
    const [event] = await readAll(app, `SELECT actor_type, actor_id, actor_name, actor_email FROM audit_events WHERE organization_id = $1 AND resource_id = $2`, [org.id, child.id]);
    expect(event).toEqual({ actor_type: 'API_KEY', actor_id: parent.id, actor_name: 'ci', actor_email: null });
  });
});

describe('a key as the bearer', () => {
  it('acts in its organization with exactly its scopes', async () => {
    const key = await createKey(app, org.id, ['org.view', 'workspace.view'], { as: owner });
    const data = ok(await app.gql(ORG_QUERY, { id: org.id }, { token: key.secret }));
    expect(data.organization.id).toBe(org.id);
    const perms = ok(await app.gql(`query($id: ID!, $ws: ID!) { organization(id: $id) { viewerPermissions } workspace(id: $ws) { viewerPermissions } }`, { id: org.id, ws: org.defaultWorkspaceId }, { token: key.secret }));
    expect(perms.organization.viewerPermissions).toEqual(['org.view', 'workspace.view']);
    expect(perms.workspace.viewerPermissions).toEqual(['org.view', 'workspace.view']);
    const settings = await app.gql(`query($id: ID!) { organization(id: $id) { id settings { timezone } } }`, { id: org.id }, { token: key.secret });
    expect(codes(settings)).toEqual(['FORBIDDEN']);
    expect(settings.data!.organization.id).toBe(org.id);
    expect(codes(await app.gql(`mutation($id: ID!) { updateOrganization(id: $id, input: { name: "nope" }) { id } }`, { id: org.id }, { token: key.secret }))).toEqual(['FORBIDDEN']);
    const creator = await createKey(app, org.id, ['org.view', 'workspace.view', 'workspace.create'], { as: owner });
    const ws = ok(await app.gql(`mutation($id: ID!) { createWorkspace(organizationId: $id, input: { name: "From CI" }) { id name } }`, { id: org.id }, { token: creator.secret }));
    expect(ws.createWorkspace.name).toBe('From CI');
    const [event] = await readAll(app, `SELECT actor_type, actor_id, actor_name FROM audit_events WHERE organization_id = $1 AND action = 'workspace.created' AND resource_id = $2`, [org.id, ws.createWorkspace.id]);
    expect(event).toEqual({ actor_type: 'API_KEY', actor_id: creator.id, actor_name: 'ci' });
  });

  it('sees only its organization: another organization, its workspace or its key id is NOT_FOUND; organizations lists its own only', async () => {
    const key = await createKey(app, org.id, ['org.view', 'workspace.view', 'org.api_keys.manage'], { as: owner });
    expect(codes(await app.gql(ORG_QUERY, { id: other.id }, { token: key.secret }))).toEqual(['NOT_FOUND']);
    expect(codes(await app.gql(`query($id: ID!) { workspace(id: $id) { id } }`, { id: other.defaultWorkspaceId }, { token: key.secret }))).toEqual(['NOT_FOUND']);
    const otherKey = await createKey(app, other.id, ['org.view'], { as: (await ownerOf(other)) });
    expect(codes(await app.gql(`mutation($id: ID!) { revokeApiKey(id: $id) { id } }`, { id: otherKey.id }, { token: key.secret }))).toEqual(['NOT_FOUND']);
    expect(codes(await app.gql(CREATE_KEY, { org: other.id, input: { name: 'x', scopes: ['org.view'] } }, { token: key.secret }))).toEqual(['NOT_FOUND']);
    const list = ok(await app.gql(`{ organizations(first: 10) { nodes { id } } }`, {}, { token: key.secret }));
    expect(list.organizations.nodes).toEqual([{ id: org.id }]);
  });

  it('a RESTRICTED workspace is NOT_FOUND to a key, as to a member without a grant', async () => {
    await setFeatureFlag(app, org.id, 'restricted_workspaces', true, owner);
    const hidden = ok(await app.gql(`mutation($id: ID!) { createWorkspace(organizationId: $id, input: { name: "Vault", visibility: RESTRICTED }) { id } }`, { id: org.id }, { as: owner })).createWorkspace.id;
    const key = await createKey(app, org.id, ['org.view', 'workspace.view', 'secrets.read'], { as: owner });
    expect(codes(await app.gql(`query($id: ID!) { workspace(id: $id) { id } }`, { id: hidden }, { token: key.secret }))).toEqual(['NOT_FOUND']);
    expect(codes(await app.gql(`query($ws: ID!) { resolveSecrets(workspaceId: $ws) { key } }`, { ws: hidden }, { token: key.secret }))).toEqual(['NOT_FOUND']);
    expect(ok(await app.gql(`query($id: ID!) { workspace(id: $id) { id } }`, { id: org.defaultWorkspaceId }, { token: key.secret })).workspace.id).toBe(org.defaultWorkspaceId);
  });

  it('is not a person: me and createOrganization are FORBIDDEN', async () => {
    const key = await createKey(app, org.id, ['org.view'], { as: owner });
    expect(codes(await app.gql(`{ me { user { id } } }`, {}, { token: key.secret }))).toEqual(['FORBIDDEN']);
    expect(codes(await app.gql(`mutation { createOrganization(input: { name: "Machine Org" }) { id } }`, {}, { token: key.secret }))).toEqual(['FORBIDDEN']);
  });

  it('is logged with the key as the principal; a refused key with the reason, never the key', async () => {
    const key = await createKey(app, org.id, ['org.view'], { as: owner });
    ok(await app.gql(ORG_QUERY, { id: org.id }, { token: key.secret, headers: { 'x-request-id': 'apikey-log-ok' } }));
    expect(await requestLine('apikey-log-ok')).toMatchObject({ status: 200, principal: `apikey:${key.id}` });
    ok(await app.gql(`mutation($id: ID!) { revokeApiKey(id: $id) { id } }`, { id: key.id }, { as: owner }));
    expect((await app.gql(ORG_QUERY, { id: org.id }, { token: key.secret, headers: { 'x-request-id': 'apikey-log-refused' } })).status).toBe(401);
    expect(await requestLine('apikey-log-refused')).toMatchObject({ status: 401, reason: expect.stringContaining('API key not valid') });
    expect(lines.join('\n')).not.toContain(key.secret);
    expect(lines.join('\n')).not.toContain(key.secret.slice(12));
  });

  it('an unknown or malformed key is UNAUTHENTICATED with HTTP 401', async () => {
    for (const token of ['tsk_' + 'A'.repeat(43), 'tsk_short']) {
      const result = await app.gql(ORG_QUERY, { id: org.id }, { token });
      expect(result.status).toBe(401);
      expect(codes(result)).toEqual(['UNAUTHENTICATED']);
    }
  });
});

const owners = new Map<string, string>();
async function ownerOf(o: CreatedOrganization): Promise<string> {
  if (!owners.has(o.id)) {
    const [row] = await readAll(app, `SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.organization_id = $1 AND m.role_key = 'owner'`, [o.id]);
    owners.set(o.id, row!.email);
  }
  return owners.get(o.id)!;
}
