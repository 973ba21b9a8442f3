import { codes, ok, startTestApp, type GqlResult, type TestApp } from '../../helpers/app';
import { readAll } from '../../helpers/db';
import { addMember, createOrganization, setFeatureFlag, uniqueEmail, type CreatedOrganization } from '../../helpers/factories';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

const CREATE = `mutation($org: ID!, $input: CreateWorkspaceInput!) {
  createWorkspace(organizationId: $org, input: $input) { id name slug description isDefault visibility } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateWorkspaceInput!) { updateWorkspace(id: $id, input: $input) { id name slug description visibility } }`;
const DELETE = `mutation($id: ID!) { deleteWorkspace(id: $id) }`;
const SET_ROLE = `mutation($ws: ID!, $user: ID!, $role: WorkspaceRole) { setWorkspaceMemberRole(workspaceId: $ws, userId: $user, role: $role) { id } }`;
const GET = `query($id: ID!) { workspace(id: $id) { id slug viewerPermissions } }`;
const LIST = `query($id: ID!, $first: Int, $after: String) { organization(id: $id) { workspaceCount
  workspaces(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { id slug isDefault } } } }`;
const ENV_INPUT = { name: 'Web', tier: 'DEV', resources: { cpu: 0.5, ramMb: 512, diskGb: 5 } };

const field = (r: GqlResult) => r.errors?.[0]?.extensions?.field;
const reason = (r: GqlResult) => r.errors?.[0]?.extensions?.reason;

interface AuditNode {
  action: string;
  resourceId: string | null;
  changes: { changedFields: string[]; oldValues: Record<string, unknown>; newValues: Record<string, unknown> } | null;
  metadata: Record<string, unknown> | null;
}

async function events(orgId: string, owner: string, action: string): Promise<AuditNode[]> {
  const data = ok(
    await app.gql(`query($id: ID!) { organization(id: $id) { auditEvents(first: 100) { nodes { action resourceId changes metadata } } } }`, { id: orgId }, { as: owner }),
  );
  return data.organization.auditEvents.nodes.filter((e: AuditNode) => e.action === action);
}

const workspaceCount = async (orgId: string, as: string): Promise<number> =>
  ok(await app.gql(`query($id: ID!) { organization(id: $id) { workspaceCount } }`, { id: orgId }, { as })).organization.workspaceCount;

const createWs = (as: string, org: string, input: Record<string, unknown>) => app.gql(CREATE, { org, input }, { as });

describe('createWorkspace', () => {
  const owner = uniqueEmail('ws-owner');
  let org: CreatedOrganization;
  beforeAll(async () => {
    org = await createOrganization(app, owner);
  });

  it('derives the slug from the name, appends -2 on collision and writes one workspace.created per workspace', async () => {
    const first = ok(await createWs(owner, org.id, { name: 'Data Platform' })).createWorkspace;
    const second = ok(await createWs(owner, org.id, { name: 'Data Platform', description: 'again' })).createWorkspace;
    expect(first).toMatchObject({ name: 'Data Platform', slug: 'data-platform', description: null, isDefault: false, visibility: 'ORGANIZATION' });
    expect(second).toMatchObject({ slug: 'data-platform-2', description: 'again', isDefault: false });
    expect(await workspaceCount(org.id, owner)).toBe(3);
    const created = await events(org.id, owner, 'workspace.created');
    expect(created.map((e) => e.resourceId).sort()).toEqual([first.id, second.id].sort());
  });

  it('refuses a taken explicit slug (CONFLICT), a malformed slug and an empty name (BAD_USER_INPUT), creating nothing', async () => {
    ok(await createWs(owner, org.id, { name: 'Infra', slug: 'infra' }));
    const countBefore = await workspaceCount(org.id, owner);
    const eventsBefore = (await events(org.id, owner, 'workspace.created')).length;

    const conflict = await createWs(owner, org.id, { name: 'Other', slug: 'infra' });
    expect(codes(conflict)).toEqual(['CONFLICT']);
    expect(conflict.errors![0]!.message).toBe(`Workspace with slug 'infra' already exists`);
    expect(conflict.data).toBeNull();

    for (const slug of ['Bad Slug', 'bad--slug', '-bad', 'UPPER']) {
      const bad = await createWs(owner, org.id, { name: 'Bad', slug });
      expect(codes(bad)).toEqual(['BAD_USER_INPUT']);
      expect(field(bad)).toBe('slug');
    }
    for (const name of ['', '   ']) {
      const bad = await createWs(owner, org.id, { name });
      expect(codes(bad)).toEqual(['BAD_USER_INPUT']);
      expect(field(bad)).toBe('name');
    }
    expect(await workspaceCount(org.id, owner)).toBe(countBefore);
    expect(await events(org.id, owner, 'workspace.created')).toHaveLength(eventsBefore);
  });

  it('allows the same slug in two different organizations', async () => {
    const other = await createOrganization(app, owner);
    const a = ok(await createWs(owner, org.id, { name: 'Shared', slug: 'shared-slug' })).createWorkspace;
    const b = ok(await createWs(owner, other.id, { name: 'Shared', slug: 'shared-slug' })).createWorkspace;
    expect([a.slug, b.slug]).toEqual(['shared-slug', 'shared-slug']);
    expect(a.id).not.toBe(b.id);
  });
});

describe('updateWorkspace and deleteWorkspace', () => {
  const owner = uniqueEmail('ws-upd');
  let org: CreatedOrganization;
  beforeAll(async () => {
    org = await createOrganization(app, owner);
  });

  it('records exactly the changed fields in the audit event', async () => {
    const ws = ok(await createWs(owner, org.id, { name: 'Before', slug: 'keep-me' })).createWorkspace;
    const updated = ok(await app.gql(UPDATE, { id: ws.id, input: { name: 'After', slug: 'keep-me', description: 'Now described' } }, { as: owner }));
    expect(updated.updateWorkspace).toMatchObject({ id: ws.id, name: 'After', slug: 'keep-me', description: 'Now described', visibility: 'ORGANIZATION' });
    const audit = await events(org.id, owner, 'workspace.updated');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ resourceId: ws.id });
    expect(audit[0].changes).toEqual({
      changedFields: ['name', 'description'],
      oldValues: { name: 'Before', description: null },
      newValues: { name: 'After', description: 'Now described' },
    });
  });

  it('refuses to delete the default workspace (PRECONDITION_FAILED, DEFAULT_WORKSPACE)', async () => {
    const result = await app.gql(DELETE, { id: org.defaultWorkspaceId }, { as: owner });
    expect(codes(result)).toEqual(['PRECONDITION_FAILED']);
    expect(reason(result)).toBe('DEFAULT_WORKSPACE');
    expect(ok(await app.gql(GET, { id: org.defaultWorkspaceId }, { as: owner })).workspace.id).toBe(org.defaultWorkspaceId);
  });

  it('refuses while an environment is active, then deletes the workspace with its destroyed environments', async () => {
    const ws = ok(await createWs(owner, org.id, { name: 'Doomed' })).createWorkspace;
    const env = ok(await app.gql(`mutation($ws: ID!, $input: CreateEnvironmentInput!) { createEnvironment(workspaceId: $ws, input: $input) { id } }`, { ws: ws.id, input: ENV_INPUT }, { as: owner })).createEnvironment;

    const blocked = await app.gql(DELETE, { id: ws.id }, { as: owner });
    expect(codes(blocked)).toEqual(['PRECONDITION_FAILED']);
    expect(reason(blocked)).toBe('ACTIVE_ENVIRONMENTS');
    expect(blocked.errors![0]!.message).toBe('Cannot delete a workspace with 1 active environment. Destroy it first.');
    expect(blocked.data).toBeNull();

    ok(await app.gql(`mutation($id: ID!) { destroyEnvironment(id: $id) { id } }`, { id: env.id }, { as: owner }));
    expect(ok(await app.gql(DELETE, { id: ws.id }, { as: owner })).deleteWorkspace).toBe(true);

    const gone = await app.gql(GET, { id: ws.id }, { as: owner });
    expect(codes(gone)).toEqual(['NOT_FOUND']);
    expect(gone.data?.workspace ?? null).toBeNull();
    expect(codes(await app.gql(`query($id: ID!) { environment(id: $id) { id } }`, { id: env.id }, { as: owner }))).toEqual(['NOT_FOUND']);
    expect(await readAll(app, `SELECT count(*)::int AS n FROM environments WHERE workspace_id = $1`, [ws.id])).toEqual([{ n: 0 }]);
    const deleted = await events(org.id, owner, 'workspace.deleted');
    expect(deleted.map((e) => e.resourceId)).toEqual([ws.id]);
  });
});

describe('Organization.workspace and Organization.workspaces', () => {
  const owner = uniqueEmail('ws-list');
  let org: CreatedOrganization;
  beforeAll(async () => {
    org = await createOrganization(app, owner);
  });

  it('returns null without an error for a missing slug, the workspace for a present one', async () => {
    ok(await createWs(owner, org.id, { name: 'Present' }));
    const result = await app.gql(`query($id: ID!) { organization(id: $id) { id missing: workspace(slug: "nope") { id } present: workspace(slug: "present") { slug } } }`, { id: org.id }, { as: owner });
    expect(result.errors).toBeUndefined();
    expect(result.data!.organization).toEqual({ id: org.id, missing: null, present: { slug: 'present' } });
  });

  it('paginates forward with first/after, the default workspace first, totalCount on every page', async () => {
    const fresh = await createOrganization(app, owner);
    for (const name of ['Alpha', 'Beta', 'Gamma']) ok(await createWs(owner, fresh.id, { name }));
    const all = ok(await app.gql(LIST, { id: fresh.id, first: 100 }, { as: owner })).organization.workspaces;
    expect(all.totalCount).toBe(4);
    expect(all.nodes[0]).toEqual({ id: fresh.defaultWorkspaceId, slug: 'default', isDefault: true });
    expect(all.nodes.map((n: { slug: string; id: string }) => n.slug).sort()).toEqual(['alpha', 'beta', 'default', 'gamma']);

    const page1 = ok(await app.gql(LIST, { id: fresh.id, first: 2 }, { as: owner })).organization.workspaces;
    expect(page1.totalCount).toBe(4);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = ok(await app.gql(LIST, { id: fresh.id, first: 2, after: page1.pageInfo.endCursor }, { as: owner })).organization.workspaces;
    expect(page2.totalCount).toBe(4);
    expect(page2.pageInfo.hasNextPage).toBe(false);
    expect([...page1.nodes, ...page2.nodes]).toEqual(all.nodes);
  });
});

describe('workspace permissions and RESTRICTED visibility', () => {
  const owner = uniqueEmail('ws-perm-owner');
  const admin = uniqueEmail('ws-perm-admin');
  const member = uniqueEmail('ws-perm-member');
  const viewer = uniqueEmail('ws-perm-viewer');
  let org: CreatedOrganization;
  let memberId: string;
  beforeAll(async () => {
    org = await createOrganization(app, owner);
    await addMember(app, org.id, admin, 'admin');
    memberId = await addMember(app, org.id, member, 'member');
    await addMember(app, org.id, viewer, 'viewer');
    // RESTRICTED workspaces need the plan feature, which the trial plan (PRO) lacks.
    await setFeatureFlag(app, org.id, 'restricted_workspaces', true, owner);
  });

  it('lets only admin (not member or viewer) create workspaces, and viewer cannot update', async () => {
    const before = await workspaceCount(org.id, owner);
    for (const who of [member, viewer]) {
      const denied = await createWs(who, org.id, { name: 'Nope' });
      expect(codes(denied)).toEqual(['FORBIDDEN']);
      expect(denied.data).toBeNull();
    }
    expect(await workspaceCount(org.id, owner)).toBe(before);
    const created = ok(await createWs(admin, org.id, { name: 'By Admin' })).createWorkspace;
    expect(created.slug).toBe('by-admin');
    const update = await app.gql(UPDATE, { id: created.id, input: { name: 'Hijacked' } }, { as: viewer });
    expect(codes(update)).toEqual(['FORBIDDEN']);
    expect(ok(await app.gql(`query($id: ID!) { workspace(id: $id) { name } }`, { id: created.id }, { as: owner })).workspace.name).toBe('By Admin');
  });

  it('hides a RESTRICTED workspace from a plain member until granted a workspace role', async () => {
    const ws = ok(await createWs(owner, org.id, { name: 'Secret Lab', visibility: 'RESTRICTED' })).createWorkspace;
    expect(ws.visibility).toBe('RESTRICTED');
    const visibleIds = async (who: string) => {
      const list = ok(await app.gql(LIST, { id: org.id, first: 100 }, { as: who })).organization.workspaces;
      expect(list.totalCount).toBe(list.nodes.length);
      return list.nodes.map((n: { slug: string; id: string }) => n.id) as string[];
    };

    const hidden = await app.gql(GET, { id: ws.id }, { as: member });
    expect(codes(hidden)).toEqual(['NOT_FOUND']);
    expect(hidden.errors![0]!.message).toBe('Workspace not found');
    expect(await visibleIds(member)).not.toContain(ws.id);
    const bySlug = await app.gql(`query($id: ID!) { organization(id: $id) { workspace(slug: "secret-lab") { id } } }`, { id: org.id }, { as: member });
    expect(bySlug.errors).toBeUndefined();
    expect(bySlug.data).toEqual({ organization: { workspace: null } });
    const ownerIds = await visibleIds(owner);
    expect(ownerIds).toContain(ws.id);
    expect(await visibleIds(member)).toHaveLength(ownerIds.length - 1);
    for (const who of [owner, admin]) expect(ok(await app.gql(GET, { id: ws.id }, { as: who })).workspace.id).toBe(ws.id);

    ok(await app.gql(SET_ROLE, { ws: ws.id, user: memberId, role: 'WORKSPACE_VIEWER' }, { as: owner }));
    expect(ok(await app.gql(GET, { id: ws.id }, { as: member })).workspace.viewerPermissions).toEqual(['workspace.view']);
    expect(await visibleIds(member)).toContain(ws.id);

    ok(await app.gql(SET_ROLE, { ws: ws.id, user: memberId, role: 'WORKSPACE_ADMIN' }, { as: owner }));
    expect(ok(await app.gql(GET, { id: ws.id }, { as: member })).workspace.viewerPermissions).toEqual([
      'environment.create', 'environment.destroy', 'environment.update', 'workspace.members.manage', 'workspace.update', 'workspace.view',
    ]);

    ok(await app.gql(SET_ROLE, { ws: ws.id, user: memberId, role: null }, { as: owner }));
    expect(codes(await app.gql(GET, { id: ws.id }, { as: member }))).toEqual(['NOT_FOUND']);
    expect(await visibleIds(member)).not.toContain(ws.id);

    const changes = (await events(org.id, owner, 'workspace.member_role_changed')).filter((e) => e.resourceId === ws.id);
    expect(changes.map((e) => e.metadata?.role).sort()).toEqual(['WORKSPACE_ADMIN', 'WORKSPACE_VIEWER', null].sort());
  });

  it('an owner or admin keeps all of their role’s permissions in a workspace where they also hold a narrower grant, in a page as by id', async () => {
    const ws = ok(await createWs(owner, org.id, { name: 'Narrow Grants', visibility: 'RESTRICTED' })).createWorkspace;
    const everything = ['environment.create', 'environment.destroy', 'environment.update', 'workspace.members.manage', 'workspace.update', 'workspace.view'];
    const PAGE = `query($id: ID!) { organization(id: $id) { workspaces(first: 100) { nodes { id viewerPermissions } } } }`;
    const seen = async (who: string) => ({
      inPage: ok(await app.gql(PAGE, { id: org.id }, { as: who })).organization.workspaces.nodes.find((n: { id: string }) => n.id === ws.id).viewerPermissions as string[],
      byId: ok(await app.gql(GET, { id: ws.id }, { as: who })).workspace.viewerPermissions as string[],
    });
    for (const who of [owner, admin]) {
      const before = await seen(who);
      expect(before.inPage).toEqual(expect.arrayContaining(everything));
      expect(before.byId).toEqual(before.inPage);
      const userId = ok(await app.gql(`{ me { user { id } } }`, {}, { as: who })).me.user.id;
      ok(await app.gql(SET_ROLE, { ws: ws.id, user: userId, role: 'WORKSPACE_VIEWER' }, { as: owner }));
      expect(await seen(who)).toEqual(before);
    }
    // A plain member's grant still decides: seen with exactly the grant's permissions, in the page too.
    ok(await app.gql(SET_ROLE, { ws: ws.id, user: memberId, role: 'WORKSPACE_MEMBER' }, { as: owner }));
    expect(await seen(member)).toEqual({ inPage: ['environment.create', 'environment.update', 'workspace.view'], byId: ['environment.create', 'environment.update', 'workspace.view'] });
  });

  it('answers a grant to a user who is not a member (or no user) with NOT_FOUND, granting nothing', async () => {
    const outsider = uniqueEmail('ws-outsider');
    const outsiderId = ok(await app.gql(`{ me { user { id } } }`, {}, { as: outsider })).me.user.id;
    for (const user of [outsiderId, '00000000-0000-4000-8000-000000000000']) {
      const result = await app.gql(SET_ROLE, { ws: org.defaultWorkspaceId, user, role: 'WORKSPACE_ADMIN' }, { as: owner });
      expect(codes(result)).toEqual(['NOT_FOUND']);
      expect(result.data).toBeNull();
    }
    const members = ok(await app.gql(`query($id: ID!) { workspace(id: $id) { members { user { id } } } }`, { id: org.defaultWorkspaceId }, { as: owner }));
    expect(members.workspace.members).toEqual([]);
  });

  it('lists Workspace.members for the owner; a plain member gets null with FORBIDDEN at the path', async () => {
    ok(await app.gql(SET_ROLE, { ws: org.defaultWorkspaceId, user: memberId, role: 'WORKSPACE_MEMBER' }, { as: owner }));
    const query = `query($id: ID!) { workspace(id: $id) { id members { user { id email } role } } }`;
    const forOwner = ok(await app.gql(query, { id: org.defaultWorkspaceId }, { as: owner }));
    expect(forOwner.workspace.members).toEqual([{ user: { id: memberId, email: member }, role: 'WORKSPACE_MEMBER' }]);

    const forMember = await app.gql(query, { id: org.defaultWorkspaceId }, { as: member });
    expect(codes(forMember)).toEqual(['FORBIDDEN']);
    expect(forMember.errors![0]!.path).toEqual(['workspace', 'members']);
    expect(forMember.data).toEqual({ workspace: { id: org.defaultWorkspaceId, members: null } });
  });
});
