import { randomUUID } from 'node:crypto';
import { codes, ok, startTestApp, type GqlResult, type TestApp } from '../../helpers/app';
import { addMember, createOrganization, type CreatedOrganization, setFeatureFlag, uniqueEmail } from '../../helpers/factories';

/**
 * Feature flags (SPEC §5): Organization.features = the plan's features ∪ the organization's
 * overrides, setFeatureFlag, and the one gate (Access.requireFeature) on RESTRICTED workspaces.
 * Until billing lands every organization is on the trial plan PRO (audit_log_export, custom_roles).
 */

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

const FEATURES = `query($id: ID!) { organization(id: $id) { features { key enabled description source } } }`;
const SET = `mutation($org: ID!, $key: String!, $enabled: Boolean!) { setFeatureFlag(organizationId: $org, key: $key, enabled: $enabled) { key enabled description source } }`;
const CREATE_WS = `mutation($org: ID!, $input: CreateWorkspaceInput!) { createWorkspace(organizationId: $org, input: $input) { id name visibility } }`;
const UPDATE_WS = `mutation($id: ID!, $input: UpdateWorkspaceInput!) { updateWorkspace(id: $id, input: $input) { id name visibility } }`;

interface Flag {
  key: string;
  enabled: boolean;
  description: string | null;
  source: 'PLAN' | 'OVERRIDE';
}
interface AuditNode {
  action: string;
  resourceId: string | null;
  changes: { changedFields: string[]; oldValues: Record<string, unknown>; newValues: Record<string, unknown> } | null;
  metadata: Record<string, unknown> | null;
}

const features = async (orgId: string, as: string): Promise<Flag[]> => ok(await app.gql(FEATURES, { id: orgId }, { as })).organization.features;
const summary = (flags: Flag[]) => flags.map((f) => [f.key, f.enabled, f.source]);
const set = (as: string, org: string, key: string, enabled: boolean) => app.gql(SET, { org, key, enabled }, { as });
const field = (r: GqlResult) => r.errors?.[0]?.extensions?.field;

async function events(orgId: string, owner: string, action: string): Promise<AuditNode[]> {
  const data = ok(
    await app.gql(`query($id: ID!) { organization(id: $id) { auditEvents(first: 100) { nodes { action resourceId changes metadata } } } }`, { id: orgId }, { as: owner }),
  );
  return data.organization.auditEvents.nodes.filter((e: AuditNode) => e.action === action);
}

async function workspaces(orgId: string, as: string): Promise<Array<{ name: string; visibility: string }>> {
  const data = ok(await app.gql(`query($id: ID!) { organization(id: $id) { workspaces(first: 100) { nodes { name visibility } } } }`, { id: orgId }, { as }));
  return data.organization.workspaces.nodes;
}

describe('Organization.features: plan features ∪ overrides', () => {
  let owner: string;
  let org: CreatedOrganization;
  beforeAll(async () => {
    owner = uniqueEmail('ff-union');
    org = await createOrganization(app, owner);
  });

  it('starts with the trial plan PRO: audit_log_export and custom_roles, enabled, from the plan, described', async () => {
    const flags = await features(org.id, owner);
    expect(summary(flags)).toEqual([
      ['audit_log_export', true, 'PLAN'],
      ['custom_roles', true, 'PLAN'],
    ]);
    for (const f of flags) expect(f.description).toEqual(expect.any(String));
  });

  it('lets an override switch a plan feature off, and on again, each time as OVERRIDE', async () => {
    expect(ok(await set(owner, org.id, 'custom_roles', false)).setFeatureFlag).toEqual({
      key: 'custom_roles',
      enabled: false,
      description: expect.any(String),
      source: 'OVERRIDE',
    });
    expect(summary(await features(org.id, owner))).toEqual([
      ['audit_log_export', true, 'PLAN'],
      ['custom_roles', false, 'OVERRIDE'],
    ]);
    ok(await set(owner, org.id, 'custom_roles', true));
    expect(summary(await features(org.id, owner))).toEqual([
      ['audit_log_export', true, 'PLAN'],
      ['custom_roles', true, 'OVERRIDE'],
    ]);
  });

  it('lets an override switch on a feature the plan lacks, and an unknown key (no description), listed by key', async () => {
    ok(await set(owner, org.id, 'restricted_workspaces', true));
    expect(ok(await set(owner, org.id, 'deploy.canary-v2', true)).setFeatureFlag).toEqual({ key: 'deploy.canary-v2', enabled: true, description: null, source: 'OVERRIDE' });
    ok(await set(owner, org.id, 'beta_search', false));
    const flags = await features(org.id, owner);
    expect(summary(flags)).toEqual([
      ['audit_log_export', true, 'PLAN'],
      ['beta_search', false, 'OVERRIDE'],
      ['custom_roles', true, 'OVERRIDE'],
      ['deploy.canary-v2', true, 'OVERRIDE'],
      ['restricted_workspaces', true, 'OVERRIDE'],
    ]);
    expect(flags.find((f) => f.key === 'restricted_workspaces')!.description).toEqual(expect.any(String));
    expect(flags.find((f) => f.key === 'beta_search')!.description).toBeNull();
  });

  it('keeps overrides per organization: another organization still has only its plan features', async () => {
    const other = uniqueEmail('ff-union-other');
    const otherOrg = await createOrganization(app, other);
    expect(summary(await features(otherOrg.id, other))).toEqual([
      ['audit_log_export', true, 'PLAN'],
      ['custom_roles', true, 'PLAN'],
    ]);
  });

  it('shows the features to every member (org.view), viewers included', async () => {
    const viewer = uniqueEmail('ff-union-viewer');
    await addMember(app, org.id, viewer, 'viewer');
    expect(await features(org.id, viewer)).toEqual(await features(org.id, owner));
  });

  it('answers the same through the federation (_entities), and nothing for an organization the principal cannot see', async () => {
    const stranger = uniqueEmail('ff-fed-stranger');
    const strangerOrg = await createOrganization(app, stranger);
    const result = await app.gql(
      `query($r: [_Any!]!) { _entities(representations: $r) { ... on Organization { id features { key enabled description source } } } }`,
      { r: [{ __typename: 'Organization', id: org.id }, { __typename: 'Organization', id: strangerOrg.id }] },
      { as: owner },
    );
    expect(result.data!._entities).toEqual([{ id: org.id, features: await features(org.id, owner) }, null]);
    expect(codes(result)).toEqual(['NOT_FOUND']);
  });
});

describe('setFeatureFlag: key, permission, audit', () => {
  let owner: string;
  let org: CreatedOrganization;
  const admin = uniqueEmail('ff-set-admin');
  const member = uniqueEmail('ff-set-member');
  const viewer = uniqueEmail('ff-set-viewer');
  beforeAll(async () => {
    owner = uniqueEmail('ff-set');
    org = await createOrganization(app, owner);
    await addMember(app, org.id, admin, 'admin');
    await addMember(app, org.id, member, 'member');
    await addMember(app, org.id, viewer, 'viewer');
  });

  it.each([
    ['uppercase', 'Custom_roles'],
    ['one character', 'a'],
    ['a leading digit', '1flag'],
    ['a leading dot', '.flag'],
    ['a space', 'my flag'],
    ['65 characters', `a${'b'.repeat(64)}`],
    ['empty', ''],
    ['a slash', 'a/b'],
  ])('refuses a key with %s: BAD_USER_INPUT on field key, nothing stored or audited', async (_label, key) => {
    const result = await set(owner, org.id, key, true);
    expect(codes(result)).toEqual(['BAD_USER_INPUT']);
    expect(field(result)).toBe('key');
    expect(result.data).toBeNull();
    expect(summary(await features(org.id, owner))).not.toContainEqual([key, true, 'OVERRIDE']);
    expect(await events(org.id, owner, 'feature.toggled')).toEqual([]);
  });

  it('accepts the longest key (64 characters) and the allowed punctuation', async () => {
    const longest = `a${'b'.repeat(63)}`;
    expect(ok(await set(admin, org.id, longest, true)).setFeatureFlag.key).toBe(longest);
    expect(ok(await set(admin, org.id, 'a1_.-z', false)).setFeatureFlag).toMatchObject({ key: 'a1_.-z', enabled: false });
  });

  it('is FORBIDDEN to a member and a viewer, and changes nothing', async () => {
    const before = await features(org.id, owner);
    const audits = (await events(org.id, owner, 'feature.toggled')).length;
    for (const who of [member, viewer]) {
      const result = await set(who, org.id, 'custom_roles', false);
      expect(codes(result)).toEqual(['FORBIDDEN']);
      expect(result.data).toBeNull();
    }
    expect(await features(org.id, owner)).toEqual(before);
    expect(await events(org.id, owner, 'feature.toggled')).toHaveLength(audits);
  });

  it("is NOT_FOUND for another tenant's organization (like a random id), and UNAUTHENTICATED without a token", async () => {
    const other = uniqueEmail('ff-set-other');
    const otherOrg = await createOrganization(app, other);
    for (const id of [otherOrg.id, randomUUID()]) {
      const result = await set(owner, id, 'custom_roles', false);
      expect(codes(result)).toEqual(['NOT_FOUND']);
      expect(result.errors![0]!.message).toBe('Organization not found');
    }
    // NOT_FOUND comes before BAD_USER_INPUT (SPEC §6).
    expect(codes(await set(owner, otherOrg.id, 'Bad Key', false))).toEqual(['NOT_FOUND']);
    expect(codes(await app.gql(SET, { org: org.id, key: 'custom_roles', enabled: false }))).toEqual(['UNAUTHENTICATED']);
    expect(summary(await features(otherOrg.id, other))).toEqual([
      ['audit_log_export', true, 'PLAN'],
      ['custom_roles', true, 'PLAN'],
    ]);
    expect(await events(otherOrg.id, other, 'feature.toggled')).toEqual([]);
  });

  it('writes one feature.toggled per call with the key, the new value and the old one; the same value again is one event with no change', async () => {
    const fresh = uniqueEmail('ff-audit');
    const freshOrg = await createOrganization(app, fresh);
    ok(await set(fresh, freshOrg.id, 'custom_roles', false));
    ok(await set(fresh, freshOrg.id, 'custom_roles', false));
    ok(await set(fresh, freshOrg.id, 'restricted_workspaces', true));
    ok(await set(fresh, freshOrg.id, 'custom_roles', true));
    const toggled = (await events(freshOrg.id, fresh, 'feature.toggled')).reverse();
    expect(toggled).toEqual([
      {
        action: 'feature.toggled',
        resourceId: 'custom_roles',
        changes: { changedFields: ['enabled', 'source'], oldValues: { enabled: true, source: 'PLAN' }, newValues: { enabled: false, source: 'OVERRIDE' } },
        metadata: { key: 'custom_roles', enabled: false, previousEnabled: true, previousSource: 'PLAN' },
      },
      {
        action: 'feature.toggled',
        resourceId: 'custom_roles',
        changes: { changedFields: [], oldValues: {}, newValues: {} },
        metadata: { key: 'custom_roles', enabled: false, previousEnabled: false, previousSource: 'OVERRIDE' },
      },
      {
        action: 'feature.toggled',
        resourceId: 'restricted_workspaces',
        changes: { changedFields: ['enabled', 'source'], oldValues: { enabled: false, source: null }, newValues: { enabled: true, source: 'OVERRIDE' } },
        metadata: { key: 'restricted_workspaces', enabled: true, previousEnabled: false, previousSource: null },
      },
      {
        action: 'feature.toggled',
        resourceId: 'custom_roles',
        changes: { changedFields: ['enabled'], oldValues: { enabled: false }, newValues: { enabled: true } },
        metadata: { key: 'custom_roles', enabled: true, previousEnabled: false, previousSource: 'OVERRIDE' },
      },
    ]);
  });
});

describe('the restricted_workspaces gate (FEATURE_DISABLED)', () => {
  let owner: string;
  let org: CreatedOrganization;
  const member = uniqueEmail('ff-gate-member');
  beforeAll(async () => {
    owner = uniqueEmail('ff-gate');
    org = await createOrganization(app, owner);
    await addMember(app, org.id, member, 'member');
  });

  it('refuses creating a RESTRICTED workspace on the trial plan: FEATURE_DISABLED naming the feature, nothing created or audited', async () => {
    const result = await app.gql(CREATE_WS, { org: org.id, input: { name: 'Vault', visibility: 'RESTRICTED' } }, { as: owner });
    expect(codes(result)).toEqual(['FEATURE_DISABLED']);
    expect(result.errors![0]!.extensions).toMatchObject({ code: 'FEATURE_DISABLED', feature: 'restricted_workspaces' });
    expect(result.data).toBeNull();
    expect((await workspaces(org.id, owner)).map((w) => w.name)).not.toContain('Vault');
    expect(await events(org.id, owner, 'workspace.created')).toEqual([]);
  });

  it('keeps the SPEC §6 order: NOT_FOUND, FORBIDDEN and BAD_USER_INPUT come before FEATURE_DISABLED', async () => {
    const stranger = uniqueEmail('ff-gate-stranger');
    await createOrganization(app, stranger);
    expect(codes(await app.gql(CREATE_WS, { org: org.id, input: { name: 'Vault', visibility: 'RESTRICTED' } }, { as: stranger }))).toEqual(['NOT_FOUND']);
    expect(codes(await app.gql(CREATE_WS, { org: org.id, input: { name: 'Vault', visibility: 'RESTRICTED' } }, { as: member }))).toEqual(['FORBIDDEN']);
    const bad = await app.gql(CREATE_WS, { org: org.id, input: { name: '  ', visibility: 'RESTRICTED' } }, { as: owner });
    expect(codes(bad)).toEqual(['BAD_USER_INPUT']);
    expect(field(bad)).toBe('name');
  });

  it('refuses updating a workspace to RESTRICTED: FEATURE_DISABLED, the workspace unchanged and no event', async () => {
    const ws = ok(await app.gql(CREATE_WS, { org: org.id, input: { name: 'Open Lab' } }, { as: owner })).createWorkspace;
    const result = await app.gql(UPDATE_WS, { id: ws.id, input: { name: 'Closed Lab', visibility: 'RESTRICTED' } }, { as: owner });
    expect(codes(result)).toEqual(['FEATURE_DISABLED']);
    expect(result.errors![0]!.extensions!.feature).toBe('restricted_workspaces');
    expect(ok(await app.gql(`query($id: ID!) { workspace(id: $id) { name visibility } }`, { id: ws.id }, { as: owner })).workspace).toEqual({
      name: 'Open Lab',
      visibility: 'ORGANIZATION',
    });
    expect(await events(org.id, owner, 'workspace.updated')).toEqual([]);
    // Setting ORGANIZATION explicitly needs no feature.
    expect(ok(await app.gql(UPDATE_WS, { id: ws.id, input: { visibility: 'ORGANIZATION' } }, { as: owner })).updateWorkspace.visibility).toBe('ORGANIZATION');
  });

  it('applies a toggle from the next request: on, RESTRICTED works; off, it is refused again; an existing RESTRICTED workspace stays editable', async () => {
    await setFeatureFlag(app, org.id, 'restricted_workspaces', true, owner);
    const ws = ok(await app.gql(CREATE_WS, { org: org.id, input: { name: 'Vault', visibility: 'RESTRICTED' } }, { as: owner })).createWorkspace;
    expect(ws.visibility).toBe('RESTRICTED');
    const open = ok(await app.gql(CREATE_WS, { org: org.id, input: { name: 'Door' } }, { as: owner })).createWorkspace;
    expect(ok(await app.gql(UPDATE_WS, { id: open.id, input: { visibility: 'RESTRICTED' } }, { as: owner })).updateWorkspace.visibility).toBe('RESTRICTED');

    await setFeatureFlag(app, org.id, 'restricted_workspaces', false, owner);
    const refused = await app.gql(CREATE_WS, { org: org.id, input: { name: 'Second Vault', visibility: 'RESTRICTED' } }, { as: owner });
    expect(codes(refused)).toEqual(['FEATURE_DISABLED']);
    expect(ok(await app.gql(UPDATE_WS, { id: ws.id, input: { name: 'Vault 2', visibility: 'RESTRICTED' } }, { as: owner })).updateWorkspace).toEqual({
      id: ws.id,
      name: 'Vault 2',
      visibility: 'RESTRICTED',
    });
    expect((await workspaces(org.id, owner)).map((w) => w.name).sort()).toEqual(['Default', 'Door', 'Open Lab', 'Vault 2'].sort());
  });
});

describe('Organization.features under a list', () => {
  it('costs the same SQL statements for 1 organization as for 6 (plans and overrides batched)', async () => {
    const statements = async (as: string): Promise<number> => {
      const result = await app.gql(`{ organizations(first: 50) { nodes { id features { key enabled source } } } }`, {}, { as });
      const data = ok(result);
      expect(data.organizations.nodes.every((n: { features: Flag[] }) => n.features.some((f) => f.key === 'custom_roles'))).toBe(true);
      return Number(result.headers.get('x-sql-statements'));
    };
    const one = uniqueEmail('ff-n1-one');
    const many = uniqueEmail('ff-n1-many');
    await createOrganization(app, one);
    for (let i = 0; i < 6; i += 1) {
      const created = await createOrganization(app, many);
      if (i % 2 === 0) await setFeatureFlag(app, created.id, `beta.n${i}`, true, many);
    }
    const single = await statements(one);
    expect(single).toBeGreaterThan(0);
    expect(await statements(many)).toBe(single);
  });
});
