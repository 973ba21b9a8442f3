import { codes, type GqlResult, ok, startTestApp, type TestApp } from '../helpers/app';
import { readAll, withAllRows } from '../helpers/db';
import { addMember, createOrganization, setFeatureFlag, uniqueEmail } from '../helpers/factories';

/**
 * Escalation paths not covered elsewhere (test/integration/membership covers an admin creating,
 * editing and assigning roles above theirs and touching the owner; test/integration/invitation an
 * admin inviting above; test/integration/workspace/concurrency a manager granting a workspace role
 * above theirs): here the escalator holds a custom role, or a workspace role that must not reach
 * past its workspace. Every attempt is FORBIDDEN (NOT_FOUND where the target is not visible) and
 * changes nothing: memberships, roles, invitations, grants and the audit trail are compared whole.
 */
let app: TestApp;

const CREATE_ROLE = `mutation($org: ID!, $input: CreateRoleInput!) { createRole(organizationId: $org, input: $input) { id } }`;
const UPDATE_ROLE = `mutation($id: ID!, $input: UpdateRoleInput!) { updateRole(id: $id, input: $input) { id } }`;
const ASSIGN = `mutation($org: ID!, $user: ID!, $role: String!) { updateMemberRole(organizationId: $org, userId: $user, roleKey: $role) { id } }`;
const INVITE = `mutation($org: ID!, $input: InviteMemberInput!) { inviteMember(organizationId: $org, input: $input) { token } }`;
const REMOVE = `mutation($org: ID!, $user: ID!) { removeMember(organizationId: $org, userId: $user) }`;
const GRANT = `mutation($ws: ID!, $user: ID!, $role: WorkspaceRole) { setWorkspaceMemberRole(workspaceId: $ws, userId: $user, role: $role) { id } }`;
const CREATE_WS = `mutation($org: ID!, $input: CreateWorkspaceInput!) { createWorkspace(organizationId: $org, input: $input) { id } }`;

/** A custom role that manages members and roles but holds no settings, billing or workspace management permission. */
const RECRUITER = ['org.view', 'org.members.list', 'org.members.invite', 'org.members.update_role', 'org.members.remove', 'org.roles.manage', 'workspace.view'];

const owner = uniqueEmail('esc-owner');
const admin = uniqueEmail('esc-admin');
const recruiter = uniqueEmail('esc-recruiter');
const wsAdmin = uniqueEmail('esc-wsadmin');
const target = uniqueEmail('esc-target');
let orgId: string;
let defaultWs: string;
let otherWs: string;
let restrictedWs: string;
const ids: Record<string, string> = {};
let recruiterRoleId: string;

/** Everything an escalation could change, read past row-level security. */
const snapshot = (org: string) =>
  withAllRows(app, async (r) => ({
    memberships: await r.query(`SELECT user_id, role_key FROM memberships WHERE organization_id = $1 ORDER BY user_id`, [org]),
    roles: await r.query(`SELECT key, name, permissions FROM roles WHERE organization_id = $1 ORDER BY key`, [org]),
    invitations: await r.query(`SELECT email, role_key, status FROM invitations WHERE organization_id = $1 ORDER BY email`, [org]),
    grants: await r.query(`SELECT workspace_id, user_id, role FROM workspace_members WHERE organization_id = $1 ORDER BY workspace_id, user_id`, [org]),
    audit: await r.query(`SELECT count(*)::int AS n FROM audit_events WHERE organization_id = $1`, [org]),
  }));

beforeAll(async () => {
  app = await startTestApp();
  const org = await createOrganization(app, owner);
  orgId = org.id;
  defaultWs = org.defaultWorkspaceId;
  ids.admin = await addMember(app, orgId, admin, 'admin');
  ids.wsAdmin = await addMember(app, orgId, wsAdmin, 'viewer');
  ids.target = await addMember(app, orgId, target, 'viewer');
  await setFeatureFlag(app, orgId, 'restricted_workspaces', true, owner);
  recruiterRoleId = ok(await app.gql(CREATE_ROLE, { org: orgId, input: { key: 'recruiter', name: 'Recruiter', permissions: RECRUITER } }, { as: owner })).createRole.id;
  ids.recruiter = await addMember(app, orgId, recruiter, 'recruiter');
  otherWs = ok(await app.gql(CREATE_WS, { org: orgId, input: { name: 'Other' } }, { as: owner })).createWorkspace.id;
  restrictedWs = ok(await app.gql(CREATE_WS, { org: orgId, input: { name: 'Vault', visibility: 'RESTRICTED' } }, { as: owner })).createWorkspace.id;
  ok(await app.gql(GRANT, { ws: defaultWs, user: ids.wsAdmin, role: 'WORKSPACE_ADMIN' }, { as: owner }));
});
afterAll(async () => {
  await app?.close();
});

async function refusedAndUnchanged(attempts: Array<[string, () => Promise<GqlResult>, string]>): Promise<void> {
  const before = await snapshot(orgId);
  for (const [label, attempt, code] of attempts) {
    const result = await attempt();
    expect({ label, codes: codes(result) }).toEqual({ label, codes: [code] });
  }
  expect(await snapshot(orgId)).toEqual(before);
}

describe('a custom role holder cannot reach above its own role', () => {
  it('create, edit (its own role included), assign (itself included) and invite with a permission it lacks: FORBIDDEN, nothing changes', async () => {
    const as = { as: recruiter };
    await refusedAndUnchanged([
      ['create a role with org.settings.update', () => app.gql(CREATE_ROLE, { org: orgId, input: { key: 'settler', name: 'S', permissions: ['org.view', 'org.settings.update'] } }, as), 'FORBIDDEN'],
      ['add org.billing.view to its own role', () => app.gql(UPDATE_ROLE, { id: recruiterRoleId, input: { permissions: [...RECRUITER, 'org.billing.view'] } }, as), 'FORBIDDEN'],
      ['assign admin to a viewer', () => app.gql(ASSIGN, { org: orgId, user: ids.target, role: 'admin' }, as), 'FORBIDDEN'],
      ['assign admin to itself', () => app.gql(ASSIGN, { org: orgId, user: ids.recruiter, role: 'admin' }, as), 'FORBIDDEN'],
      ['assign member (environment.create, which it lacks)', () => app.gql(ASSIGN, { org: orgId, user: ids.target, role: 'member' }, as), 'FORBIDDEN'],
      ['invite as admin', () => app.gql(INVITE, { org: orgId, input: { email: uniqueEmail('esc-inv'), roleKey: 'admin' } }, as), 'FORBIDDEN'],
      ['invite as member', () => app.gql(INVITE, { org: orgId, input: { email: uniqueEmail('esc-inv'), roleKey: 'member' } }, as), 'FORBIDDEN'],
      ['demote the admin, whose role holds more', () => app.gql(ASSIGN, { org: orgId, user: ids.admin, role: 'viewer' }, as), 'FORBIDDEN'],
      ['remove the admin, whose role holds more', () => app.gql(REMOVE, { org: orgId, user: ids.admin }, as), 'FORBIDDEN'],
      ['grant itself a workspace role', () => app.gql(GRANT, { ws: defaultWs, user: ids.recruiter, role: 'WORKSPACE_VIEWER' }, as), 'FORBIDDEN'],
    ]);
  });

  it('what it does hold it may grant (a control: the refusals above are about the permissions, not the caller)', async () => {
    const email = uniqueEmail('esc-inv-ok');
    ok(await app.gql(INVITE, { org: orgId, input: { email, roleKey: 'viewer' } }, { as: recruiter }));
    expect(await readAll(app, `SELECT role_key, status FROM invitations WHERE organization_id = $1 AND email = $2`, [orgId, email])).toEqual([
      { role_key: 'viewer', status: 'PENDING' },
    ]);
  });
});

describe('a workspace admin cannot reach past its workspace', () => {
  it('its grant counts in its workspace only: no grants elsewhere, no organization roles, no invitations, no roles', async () => {
    const as = { as: wsAdmin };
    await refusedAndUnchanged([
      ['grant in another ORGANIZATION workspace (seen as a viewer)', () => app.gql(GRANT, { ws: otherWs, user: ids.target, role: 'WORKSPACE_VIEWER' }, as), 'FORBIDDEN'],
      ['grant itself WORKSPACE_ADMIN in another workspace', () => app.gql(GRANT, { ws: otherWs, user: ids.wsAdmin, role: 'WORKSPACE_ADMIN' }, as), 'FORBIDDEN'],
      ['grant in a RESTRICTED workspace it is not granted (not visible)', () => app.gql(GRANT, { ws: restrictedWs, user: ids.wsAdmin, role: 'WORKSPACE_ADMIN' }, as), 'NOT_FOUND'],
      ['promote itself in the organization', () => app.gql(ASSIGN, { org: orgId, user: ids.wsAdmin, role: 'member' }, as), 'FORBIDDEN'],
      ['invite as viewer', () => app.gql(INVITE, { org: orgId, input: { email: uniqueEmail('esc-inv'), roleKey: 'viewer' } }, as), 'FORBIDDEN'],
      ['create a role', () => app.gql(CREATE_ROLE, { org: orgId, input: { key: 'ws_boss', name: 'W', permissions: ['org.view'] } }, as), 'FORBIDDEN'],
      ['delete the workspace (workspace.delete is no workspace role’s)', () => app.gql(`mutation($id: ID!) { deleteWorkspace(id: $id) }`, { id: defaultWs }, as), 'FORBIDDEN'],
    ]);
  });

  it('in its own workspace it grants what it holds (a control)', async () => {
    ok(await app.gql(GRANT, { ws: defaultWs, user: ids.target, role: 'WORKSPACE_MEMBER' }, { as: wsAdmin }));
    expect(await readAll(app, `SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $2`, [defaultWs, ids.target])).toEqual([
      { role: 'WORKSPACE_MEMBER' },
    ]);
  });
});
