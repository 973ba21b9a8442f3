import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll } from '../../helpers/db';
import { addMember, createOrganization, setFeatureFlag, setPlanLimits, uniqueEmail, type CreatedOrganization } from '../../helpers/factories';
import { auditRows, concurrently, outcomes, PARALLEL, RACE_NOTE, ROUNDS, serialChainEnd } from '../../helpers/races';

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

describe(`concurrent updateWorkspace ${RACE_NOTE}`, () => {
  const owner = uniqueEmail('ws-race-owner');
  let org: CreatedOrganization;
  beforeAll(async () => {
    org = await createOrganization(app, owner);
  });

  it(`keeps every one of ${PARALLEL} concurrent updates (half name, half description), one audit event each in one serial chain, ${ROUNDS} rounds`, async () => {
    for (let round = 1; round <= ROUNDS; round += 1) {
      const ws = ok(await app.gql(CREATE, { org: org.id, input: { name: `name-${round}-0`, description: `desc-${round}-0` } }, { as: owner })).createWorkspace;
      const results = await concurrently(PARALLEL, (i) =>
        app.gql(UPDATE, { id: ws.id, input: i % 2 === 0 ? { name: `name-${round}-${i + 1}` } : { description: `desc-${round}-${i + 1}` } }, { as: owner }),
      );
      expect({ round, outcomes: outcomes(results) }).toEqual({ round, outcomes: { ok: PARALLEL } });

      const events = await auditRows(app, 'workspace.updated', ws.id);
      expect({ round, events: events.length }).toEqual({ round, events: PARALLEL });
      const current = ok(await app.gql(GET, { id: ws.id }, { as: owner })).workspace;
      // No lost update: each field's events chain from the initial value to what is stored now.
      expect(serialChainEnd(events, 'name', `name-${round}-0`)).toBe(current.name);
      expect(serialChainEnd(events, 'description', `desc-${round}-0`)).toBe(current.description);
      expect([current.name, current.description]).not.toContain(`name-${round}-0`);
      expect(current.description).not.toBe(`desc-${round}-0`);
    }
  });
});

describe(`concurrent createWorkspace in one organization ${RACE_NOTE}`, () => {
  const owner = uniqueEmail('ws-create-race');
  let org: CreatedOrganization;
  beforeAll(async () => {
    // 3 rounds of 20 creates: more workspaces than PRO's 10 (the quota itself is tested in test/integration/quota).
    await setPlanLimits(app, 'PRO', { max_workspaces: null });
    org = await createOrganization(app, owner);
  });
  const SLUGS = `query($id: ID!) { organization(id: $id) { workspaces(first: 100) { nodes { slug } } } }`;

  it(`gives ${PARALLEL} parallel creates with the same name ${PARALLEL} distinct slugs and one workspace.created event each, ${ROUNDS} rounds`, async () => {
    for (let round = 1; round <= ROUNDS; round += 1) {
      const base = `same-name-${round}`;
      const results = await concurrently(PARALLEL, () => app.gql(CREATE, { org: org.id, input: { name: `Same Name ${round}` } }, { as: owner }));
      expect({ round, outcomes: outcomes(results) }).toEqual({ round, outcomes: { ok: PARALLEL } });
      const ids = results.map((r) => ok(r).createWorkspace.id as string);
      const slugs = (ok(await app.gql(SLUGS, { id: org.id }, { as: owner })).organization.workspaces.nodes as Array<{ slug: string }>)
        .map((w) => w.slug)
        .filter((slug) => slug === base || slug.startsWith(`${base}-`));
      expect(slugs.sort()).toEqual([base, ...Array.from({ length: PARALLEL - 1 }, (_, i) => `${base}-${i + 2}`)].sort());
      for (const id of ids) expect({ id, events: (await auditRows(app, 'workspace.created', id)).length }).toEqual({ id, events: 1 });
    }
  });

  it(`lets exactly one of ${PARALLEL} parallel creates with the same explicit slug succeed; the rest get CONFLICT and write nothing, ${ROUNDS} rounds`, async () => {
    for (let round = 1; round <= ROUNDS; round += 1) {
      const slug = `explicit-${round}-${Date.now()}`;
      const results = await concurrently(PARALLEL, (i) => app.gql(CREATE, { org: org.id, input: { name: `Explicit ${round} ${i}`, slug } }, { as: owner }));
      expect({ round, outcomes: outcomes(results) }).toEqual({ round, outcomes: { ok: 1, '200:CONFLICT': PARALLEL - 1 } });
      for (const r of results.filter((x) => x.errors)) expect(r.errors![0]!.message).toBe(`Workspace with slug '${slug}' already exists`);
      const winner = ok(results.find((r) => !r.errors)!).createWorkspace;
      expect(await readAll(app, `SELECT id FROM workspaces WHERE organization_id = $1 AND slug = $2`, [org.id, slug])).toEqual([{ id: winner.id }]);
      expect(await readAll(app, `SELECT resource_id FROM audit_events WHERE action = 'workspace.created' AND resource_name LIKE $1`, [`Explicit ${round} %`])).toEqual([
        { resource_id: winner.id },
      ]);
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
    // RESTRICTED workspaces need the plan feature, which the trial plan (PRO) lacks.
    await setFeatureFlag(app, org.id, 'restricted_workspaces', true, owner);
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

describe(`concurrent setWorkspaceMemberRole on one member ${RACE_NOTE}`, () => {
  const ROLES = ['WORKSPACE_VIEWER', 'WORKSPACE_MEMBER', 'WORKSPACE_ADMIN'] as const;

  it(`serialises ${PARALLEL} concurrent grants: one grant row, one event each, exactly one first grant, every previousRole true, ${ROUNDS} rounds`, async () => {
    const owner = uniqueEmail('grants-owner');
    const org = await createOrganization(app, owner);
    for (let round = 1; round <= ROUNDS; round += 1) {
      const memberId = await addMember(app, org.id, uniqueEmail(`grants-member-${round}`), 'member');
      const roles = Array.from({ length: PARALLEL }, (_, i) => ROLES[i % ROLES.length]!);
      const results = await concurrently(PARALLEL, (i) => app.gql(SET_ROLE, { ws: org.defaultWorkspaceId, user: memberId, role: roles[i] }, { as: owner }));
      expect({ round, outcomes: outcomes(results) }).toEqual({ round, outcomes: { ok: PARALLEL } });

      const events = (await auditRows(app, 'workspace.member_role_changed', org.defaultWorkspaceId)).filter((e) => e.metadata?.userId === memberId);
      expect({ round, events: events.length }).toEqual({ round, events: PARALLEL });
      const final = await grantOf(org.defaultWorkspaceId, memberId);
      expect(await readAll(app, `SELECT count(*)::int AS n FROM workspace_members WHERE workspace_id = $1 AND user_id = $2`, [org.defaultWorkspaceId, memberId])).toEqual([
        { n: 1 },
      ]);
      // Serialised on the membership row: the previous roles are exactly the roles granted before,
      // i.e. null once (the first grant) plus every granted role except the one that stayed.
      const previous = events.map((e) => String(e.metadata!.previousRole)).sort();
      const expected = [...events.map((e) => String(e.metadata!.role)), 'null'];
      expected.splice(expected.indexOf(String(final)), 1);
      expect({ round, previous }).toEqual({ round, previous: expected.sort() });
    }
  });
});
