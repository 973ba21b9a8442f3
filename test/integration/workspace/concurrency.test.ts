import { codes, ok, startTestApp, usesRealPostgres, type TestApp } from '../../helpers/app';
import { readAll } from '../../helpers/db';
import { addMember, createOrganization, uniqueEmail, type CreatedOrganization } from '../../helpers/factories';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

const CREATE = `mutation($org: ID!, $input: CreateWorkspaceInput!) { createWorkspace(organizationId: $org, input: $input) { id name description } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateWorkspaceInput!) { updateWorkspace(id: $id, input: $input) { id } }`;
const GET = `query($id: ID!) { workspace(id: $id) { id name description } }`;
const SET_ROLE = `mutation($ws: ID!, $user: ID!, $role: WorkspaceRole) { setWorkspaceMemberRole(workspaceId: $ws, userId: $user, role: $role) { id } }`;
const PERMISSIONS = `query($id: ID!) { workspace(id: $id) { viewerPermissions } }`;

interface AuditNode {
  action: string;
  resourceId: string | null;
  changes: { changedFields: string[]; oldValues: Record<string, unknown>; newValues: Record<string, unknown> } | null;
  metadata: Record<string, unknown> | null;
}

async function events(orgId: string, owner: string, action: string, resourceId: string): Promise<AuditNode[]> {
  const data = ok(
    await app.gql(`query($id: ID!) { organization(id: $id) { auditEvents(first: 100) { nodes { action resourceId changes metadata } } } }`, { id: orgId }, { as: owner }),
  );
  return data.organization.auditEvents.nodes.filter((e: AuditNode) => e.action === action && e.resourceId === resourceId);
}

const workspaceScoped = async (ws: string, as: string): Promise<string[]> =>
  (ok(await app.gql(PERMISSIONS, { id: ws }, { as })).workspace.viewerPermissions as string[]).filter((p) => !p.startsWith('org.'));

/** The workspace role a user holds, read on a connection that sees every row (so null means none). */
async function grantOf(workspaceId: string, userId: string): Promise<string | null> {
  const rows = await readAll(app, `SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $2`, [workspaceId, userId]);
  return (rows[0]?.role as string | undefined) ?? null;
}

describe('concurrent updateWorkspace', () => {
  const owner = uniqueEmail('ws-race-owner');
  let org: CreatedOrganization;
  beforeAll(async () => {
    org = await createOrganization(app, owner);
  });

  it(`keeps both of two concurrent updates of different fields, with a consistent audit chain (${usesRealPostgres() ? 'PostgreSQL' : 'PGlite'})`, async () => {
    const ws = ok(await app.gql(CREATE, { org: org.id, input: { name: 'name-0', description: 'desc-0' } }, { as: owner })).createWorkspace;
    const iterations = 10;
    for (let i = 1; i <= iterations; i++) {
      const [a, b] = await Promise.all([
        app.gql(UPDATE, { id: ws.id, input: { name: `name-${i}` } }, { as: owner }),
        app.gql(UPDATE, { id: ws.id, input: { description: `desc-${i}` } }, { as: owner }),
      ]);
      ok(a);
      ok(b);
      const current = ok(await app.gql(GET, { id: ws.id }, { as: owner })).workspace;
      expect({ iteration: i, name: current.name, description: current.description }).toEqual({ iteration: i, name: `name-${i}`, description: `desc-${i}` });
    }

    // Every event names only its own field, and for each field the old value is the previous new one.
    const updated = await events(org.id, owner, 'workspace.updated', ws.id);
    expect(updated).toHaveLength(2 * iterations);
    for (const [field, prefix] of [['name', 'name-'], ['description', 'desc-']] as const) {
      const chain = updated
        .filter((e) => e.changes!.changedFields.includes(field))
        .map((e) => e.changes!)
        .sort((x, y) => Number(String(x.newValues[field]).slice(prefix.length)) - Number(String(y.newValues[field]).slice(prefix.length)));
      expect(chain).toHaveLength(iterations);
      chain.forEach((changes, index) => {
        expect(changes).toEqual({
          changedFields: [field],
          oldValues: { [field]: `${prefix}${index}` },
          newValues: { [field]: `${prefix}${index + 1}` },
        });
      });
    }
  });
});

describe('setWorkspaceMemberRole cannot grant more than the caller holds', () => {
  const owner = uniqueEmail('ws-grant-owner');
  const wsAdmin = uniqueEmail('ws-grant-wsadmin');
  const manager = uniqueEmail('ws-grant-manager');
  const target = uniqueEmail('ws-grant-target');
  let org: CreatedOrganization;
  let wsAdminId: string;
  let managerId: string;
  let targetId: string;

  beforeAll(async () => {
    org = await createOrganization(app, owner);
    wsAdminId = await addMember(app, org.id, wsAdmin, 'viewer');
    targetId = await addMember(app, org.id, target, 'viewer');
    // A custom organization role holding workspace.members.manage but none of the environment
    // permissions: the combination the escalation rule is about (custom roles have no API yet).
    await app.db.withConnection(async (runner) => {
      await runner.query(
        `INSERT INTO roles (organization_id, key, name, permissions) VALUES ($1, 'ws_manager', 'Workspace manager', $2)`,
        [org.id, ['org.view', 'org.members.list', 'workspace.view', 'workspace.members.manage']],
      );
    });
    managerId = await addMember(app, org.id, manager, 'ws_manager');
  });

  it('lets an org viewer holding WORKSPACE_ADMIN on a RESTRICTED workspace grant every workspace role', async () => {
    const ws = ok(await app.gql(CREATE, { org: org.id, input: { name: 'Restricted Lab', visibility: 'RESTRICTED' } }, { as: owner })).createWorkspace;
    ok(await app.gql(SET_ROLE, { ws: ws.id, user: wsAdminId, role: 'WORKSPACE_ADMIN' }, { as: owner }));
    for (const role of ['WORKSPACE_VIEWER', 'WORKSPACE_MEMBER', 'WORKSPACE_ADMIN']) {
      ok(await app.gql(SET_ROLE, { ws: ws.id, user: targetId, role }, { as: wsAdmin }));
      expect(await grantOf(ws.id, targetId)).toBe(role);
    }
    ok(await app.gql(SET_ROLE, { ws: ws.id, user: targetId, role: null }, { as: wsAdmin }));
    expect(await grantOf(ws.id, targetId)).toBeNull();
  });

  it('refuses (FORBIDDEN, nothing written) a role holding permissions the caller lacks, to others and to itself', async () => {
    const ws = org.defaultWorkspaceId;
    expect(await workspaceScoped(ws, manager)).toEqual(['workspace.members.manage', 'workspace.view']);
    const before = (await events(org.id, owner, 'workspace.member_role_changed', ws)).length;

    for (const [user, role] of [
      [targetId, 'WORKSPACE_ADMIN'],
      [targetId, 'WORKSPACE_MEMBER'],
      [managerId, 'WORKSPACE_ADMIN'],
      [managerId, 'WORKSPACE_MEMBER'],
    ] as const) {
      const result = await app.gql(SET_ROLE, { ws, user, role }, { as: manager });
      expect({ user, role, codes: codes(result) }).toEqual({ user, role, codes: ['FORBIDDEN'] });
      expect(result.data).toBeNull();
      expect(await grantOf(ws, user)).toBeNull();
    }
    expect(await events(org.id, owner, 'workspace.member_role_changed', ws)).toHaveLength(before);
    expect(await workspaceScoped(ws, manager)).toEqual(['workspace.members.manage', 'workspace.view']);

    // What it does hold it may grant, and any grant it may remove.
    ok(await app.gql(SET_ROLE, { ws, user: targetId, role: 'WORKSPACE_VIEWER' }, { as: manager }));
    expect(await grantOf(ws, targetId)).toBe('WORKSPACE_VIEWER');
    ok(await app.gql(SET_ROLE, { ws, user: targetId, role: null }, { as: manager }));
    expect(await grantOf(ws, targetId)).toBeNull();
    expect(await events(org.id, owner, 'workspace.member_role_changed', ws)).toHaveLength(before + 2);
  });

  it("refuses to change or remove someone else's grant worth more than the caller's own", async () => {
    const ws = org.defaultWorkspaceId;
    ok(await app.gql(SET_ROLE, { ws, user: targetId, role: 'WORKSPACE_ADMIN' }, { as: owner }));
    for (const role of ['WORKSPACE_VIEWER', null]) {
      const result = await app.gql(SET_ROLE, { ws, user: targetId, role }, { as: manager });
      expect(codes(result)).toEqual(['FORBIDDEN']);
      expect(await grantOf(ws, targetId)).toBe('WORKSPACE_ADMIN');
    }
    ok(await app.gql(SET_ROLE, { ws, user: targetId, role: null }, { as: owner }));
  });
});

describe('concurrent first grants', () => {
  it('record a true previousRole: one of them sees the other', async () => {
    const owner = uniqueEmail('grants-owner');
    const org = await createOrganization(app, owner);
    const member = uniqueEmail('grants-member');
    const memberId = await addMember(app, org.id, member, 'member');
    const [a, b] = await Promise.all(
      (['WORKSPACE_VIEWER', 'WORKSPACE_ADMIN'] as const).map((role) => app.gql(SET_ROLE, { ws: org.defaultWorkspaceId, user: memberId, role }, { as: owner })),
    );
    ok(a);
    ok(b);
    const changed = await events(org.id, owner, 'workspace.member_role_changed', org.defaultWorkspaceId);
    const previous = changed.map((e) => (e.metadata as { previousRole: string | null }).previousRole);
    // Serialised on the membership row: exactly one first grant, the other sees it.
    expect(previous.filter((p) => p === null)).toHaveLength(1);
    expect(previous.filter((p) => p !== null)).toHaveLength(1);
  });
});
