import { randomUUID } from 'node:crypto';
import { SYSTEM_ROLES } from '../../../src/authz/permissions';
import { codes, type GqlResult, ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll } from '../../helpers/db';
import { addMember, createOrganization, uniqueEmail, type CreatedOrganization } from '../../helpers/factories';

/** SPEC §4 custom roles: rules with exact codes and fields, escalation, roles in use, the plan feature, isolation. */
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

const CREATE = `mutation($org: ID!, $input: CreateRoleInput!) { createRole(organizationId: $org, input: $input) { id key name description isSystem permissions } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateRoleInput!) { updateRole(id: $id, input: $input) { id key name description permissions } }`;
const DELETE = `mutation($id: ID!) { deleteRole(id: $id) }`;
const ROLES = `query($id: ID!) { organization(id: $id) { roles { id key name isSystem permissions } } }`;
const ASSIGN = `mutation($org: ID!, $user: ID!, $role: String!) { updateMemberRole(organizationId: $org, userId: $user, roleKey: $role) { role { key permissions } } }`;
const PERMISSIONS = `query($id: ID!) { organization(id: $id) { viewerPermissions } }`;

interface Team {
  org: CreatedOrganization;
  owner: string;
  admin: string;
  member: string;
  memberId: string;
}

async function team(label: string): Promise<Team> {
  const owner = uniqueEmail(`${label}-owner`);
  const admin = uniqueEmail(`${label}-admin`);
  const member = uniqueEmail(`${label}-member`);
  const org = await createOrganization(app, owner);
  await addMember(app, org.id, admin, 'admin');
  const memberId = await addMember(app, org.id, member, 'member');
  return { org, owner, admin, member, memberId };
}

const error = (r: GqlResult) => ({ code: r.errors?.[0]?.extensions?.code, reason: r.errors?.[0]?.extensions?.reason, field: r.errors?.[0]?.extensions?.field });
const customRoles = (orgId: string) => readAll<{ key: string; name: string; permissions: string[] }>(app, `SELECT key, name, permissions FROM roles WHERE organization_id = $1 AND NOT is_system ORDER BY key`, [orgId]);
const auditActions = async (orgId: string) =>
  (await readAll<{ action: string }>(app, `SELECT action FROM audit_events WHERE organization_id = $1 AND action LIKE 'role.%' ORDER BY occurred_at, id`, [orgId])).map((r) => r.action);

describe('Organization.roles', () => {
  it('lists the four system roles (isSystem, permissions of the matrix) and then custom ones', async () => {
    const t = await team('list');
    ok(await app.gql(CREATE, { org: t.org.id, input: { key: 'auditor', name: 'Auditor', permissions: ['org.view', 'org.audit.view'] } }, { as: t.owner }));
    const { roles } = ok(await app.gql(ROLES, { id: t.org.id }, { as: t.member })).organization;
    expect(roles.map((r: { key: string; isSystem: boolean }) => [r.key, r.isSystem])).toEqual([
      ['owner', true],
      ['admin', true],
      ['member', true],
      ['viewer', true],
      ['auditor', false],
    ]);
    for (const system of SYSTEM_ROLES) expect(roles.find((r: { key: string }) => r.key === system.key).permissions).toEqual([...system.permissions]);
    expect(roles[4].permissions).toEqual(['org.audit.view', 'org.view']);
  });
});

describe('createRole', () => {
  let t: Team;
  beforeEach(async () => {
    t = await team('create');
  });

  it('creates a role (role.created), assignable to a member, who then holds exactly its permissions', async () => {
    const role = ok(await app.gql(CREATE, { org: t.org.id, input: { key: 'env_operator', name: ' Env operator ', description: 'Runs environments', permissions: ['workspace.view', 'org.view', 'environment.destroy', 'org.view'] } }, { as: t.admin })).createRole;
    expect(role).toMatchObject({ key: 'env_operator', name: 'Env operator', description: 'Runs environments', isSystem: false, permissions: ['environment.destroy', 'org.view', 'workspace.view'] });
    expect(ok(await app.gql(ASSIGN, { org: t.org.id, user: t.memberId, role: 'env_operator' }, { as: t.admin })).updateMemberRole.role.key).toBe('env_operator');
    expect(ok(await app.gql(PERMISSIONS, { id: t.org.id }, { as: t.member })).organization.viewerPermissions).toEqual(['environment.destroy', 'org.view', 'workspace.view']);
    expect(await auditActions(t.org.id)).toEqual(['role.created']);
  });

  it('validates: key pattern and system keys (field key), unknown and machine-only permissions (field permissions), name (field name); nothing is created', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ key: 'Auditor', name: 'A', permissions: [] }, 'key'],
      [{ key: 'a', name: 'A', permissions: [] }, 'key'],
      [{ key: '1abc', name: 'A', permissions: [] }, 'key'],
      [{ key: `a${'b'.repeat(40)}`, name: 'A', permissions: [] }, 'key'],
      [{ key: 'with-dash', name: 'A', permissions: [] }, 'key'],
      [{ key: 'admin', name: 'A', permissions: [] }, 'key'],
      [{ key: 'owner', name: 'A', permissions: [] }, 'key'],
      [{ key: 'fine', name: 'A', permissions: ['org.view', 'org.everything'] }, 'permissions'],
      [{ key: 'fine', name: 'A', permissions: ['secrets.read'] }, 'permissions'],
      [{ key: 'fine', name: 'A', permissions: ['notifications.publish'] }, 'permissions'],
      [{ key: 'fine', name: '   ', permissions: [] }, 'name'],
    ];
    for (const [input, field] of cases) {
      expect({ input, ...error(await app.gql(CREATE, { org: t.org.id, input }, { as: t.owner })) }).toEqual({ input, code: 'BAD_USER_INPUT', reason: undefined, field });
    }
    expect(await customRoles(t.org.id)).toEqual([]);
    expect(await auditActions(t.org.id)).toEqual([]);
  });

  it('a key already used in the organization is CONFLICT (field key); another organization may use it', async () => {
    ok(await app.gql(CREATE, { org: t.org.id, input: { key: 'ops', name: 'Ops', permissions: ['org.view'] } }, { as: t.owner }));
    const again = await app.gql(CREATE, { org: t.org.id, input: { key: 'ops', name: 'Ops 2', permissions: [] } }, { as: t.owner });
    expect(error(again)).toEqual({ code: 'CONFLICT', reason: undefined, field: 'key' });
    const other = await team('create-other');
    ok(await app.gql(CREATE, { org: other.org.id, input: { key: 'ops', name: 'Ops', permissions: [] } }, { as: other.owner }));
    expect(await customRoles(t.org.id)).toEqual([{ key: 'ops', name: 'Ops', permissions: ['org.view'] }]);
  });

  it('escalation: an admin cannot create a role with a permission they lack (FORBIDDEN, nothing created); a member cannot create roles at all', async () => {
    for (const permission of ['org.delete', 'org.transfer', 'org.billing.manage']) {
      const r = await app.gql(CREATE, { org: t.org.id, input: { key: 'sneaky', name: 'Sneaky', permissions: ['org.view', permission] } }, { as: t.admin });
      expect({ permission, codes: codes(r) }).toEqual({ permission, codes: ['FORBIDDEN'] });
    }
    expect(codes(await app.gql(CREATE, { org: t.org.id, input: { key: 'mine', name: 'Mine', permissions: [] } }, { as: t.member }))).toEqual(['FORBIDDEN']);
    expect(await customRoles(t.org.id)).toEqual([]);
    expect(await auditActions(t.org.id)).toEqual([]);
  });
});

describe('updateRole and deleteRole', () => {
  let t: Team;
  let roleId: string;
  beforeEach(async () => {
    t = await team('edit');
    roleId = ok(await app.gql(CREATE, { org: t.org.id, input: { key: 'helper', name: 'Helper', permissions: ['org.view', 'workspace.view'] } }, { as: t.owner })).createRole.id;
  });

  it('editing a role that a member holds changes their permissions on their next request; role.updated lists the changes', async () => {
    ok(await app.gql(ASSIGN, { org: t.org.id, user: t.memberId, role: 'helper' }, { as: t.owner }));
    expect(ok(await app.gql(PERMISSIONS, { id: t.org.id }, { as: t.member })).organization.viewerPermissions).toEqual(['org.view', 'workspace.view']);
    const updated = ok(await app.gql(UPDATE, { id: roleId, input: { name: 'Helper+', permissions: ['org.view', 'workspace.view', 'workspace.create'] } }, { as: t.admin })).updateRole;
    expect(updated).toMatchObject({ key: 'helper', name: 'Helper+', permissions: ['org.view', 'workspace.create', 'workspace.view'] });
    expect(ok(await app.gql(PERMISSIONS, { id: t.org.id }, { as: t.member })).organization.viewerPermissions).toEqual(['org.view', 'workspace.create', 'workspace.view']);
    const [event] = await readAll(app, `SELECT changes FROM audit_events WHERE organization_id = $1 AND action = 'role.updated'`, [t.org.id]);
    expect(event!.changes).toEqual({
      changedFields: ['name', 'permissions'],
      oldValues: { name: 'Helper', permissions: ['org.view', 'workspace.view'] },
      newValues: { name: 'Helper+', permissions: ['org.view', 'workspace.create', 'workspace.view'] },
    });
    // Taking a permission away takes effect as fast.
    ok(await app.gql(UPDATE, { id: roleId, input: { permissions: ['org.view'] } }, { as: t.owner }));
    expect(ok(await app.gql(PERMISSIONS, { id: t.org.id }, { as: t.member })).organization.viewerPermissions).toEqual(['org.view']);
  });

  it('escalation: an admin cannot add a permission they lack, nor edit or delete a role holding one; FORBIDDEN and nothing changes', async () => {
    const addDelete = await app.gql(UPDATE, { id: roleId, input: { permissions: ['org.view', 'org.delete'] } }, { as: t.admin });
    expect(codes(addDelete)).toEqual(['FORBIDDEN']);
    const powerful = ok(await app.gql(CREATE, { org: t.org.id, input: { key: 'billing', name: 'Billing', permissions: ['org.view', 'org.billing.manage'] } }, { as: t.owner })).createRole.id;
    expect(codes(await app.gql(UPDATE, { id: powerful, input: { permissions: ['org.view'] } }, { as: t.admin }))).toEqual(['FORBIDDEN']);
    expect(codes(await app.gql(UPDATE, { id: powerful, input: { name: 'Renamed' } }, { as: t.admin }))).toEqual(['FORBIDDEN']);
    expect(codes(await app.gql(DELETE, { id: powerful }, { as: t.admin }))).toEqual(['FORBIDDEN']);
    // Nor can an admin give the role to anyone (assigning a role above one's own).
    expect(codes(await app.gql(ASSIGN, { org: t.org.id, user: t.memberId, role: 'billing' }, { as: t.admin }))).toEqual(['FORBIDDEN']);
    expect(await customRoles(t.org.id)).toEqual([
      { key: 'billing', name: 'Billing', permissions: ['org.billing.manage', 'org.view'] },
      { key: 'helper', name: 'Helper', permissions: ['org.view', 'workspace.view'] },
    ]);
    expect(await auditActions(t.org.id)).toEqual(['role.created', 'role.created']);
  });

  it('validates updates like creates (permissions null or unknown, machine-only, blank name)', async () => {
    for (const [input, field] of [
      [{ permissions: null }, 'permissions'],
      [{ permissions: ['nope'] }, 'permissions'],
      [{ permissions: ['secrets.read'] }, 'permissions'],
      [{ name: '' }, 'name'],
    ] as const) {
      expect(error(await app.gql(UPDATE, { id: roleId, input }, { as: t.owner }))).toEqual({ code: 'BAD_USER_INPUT', reason: undefined, field });
    }
  });

  it('system roles cannot be updated or deleted (PRECONDITION_FAILED, reason SYSTEM_ROLE)', async () => {
    const { roles } = ok(await app.gql(ROLES, { id: t.org.id }, { as: t.owner })).organization;
    for (const role of roles.filter((r: { isSystem: boolean }) => r.isSystem)) {
      expect(error(await app.gql(UPDATE, { id: role.id, input: { name: 'Mine now' } }, { as: t.owner }))).toEqual({ code: 'PRECONDITION_FAILED', reason: 'SYSTEM_ROLE', field: undefined });
      expect(error(await app.gql(DELETE, { id: role.id }, { as: t.owner }))).toEqual({ code: 'PRECONDITION_FAILED', reason: 'SYSTEM_ROLE', field: undefined });
    }
    const after = ok(await app.gql(ROLES, { id: t.org.id }, { as: t.owner })).organization.roles;
    expect(after.map((r: { name: string }) => r.name)).toEqual(roles.map((r: { name: string }) => r.name));
  });

  it('a role in use cannot be deleted (CONFLICT); once unused it can (role.deleted) and is gone', async () => {
    ok(await app.gql(ASSIGN, { org: t.org.id, user: t.memberId, role: 'helper' }, { as: t.owner }));
    expect(codes(await app.gql(DELETE, { id: roleId }, { as: t.owner }))).toEqual(['CONFLICT']);
    expect(await customRoles(t.org.id)).toHaveLength(1);
    ok(await app.gql(ASSIGN, { org: t.org.id, user: t.memberId, role: 'member' }, { as: t.owner }));
    // A pending invitation offering the role is a use too; once revoked, it no longer is.
    const invitation = ok(await app.gql(`mutation($org: ID!) { inviteMember(organizationId: $org, input: { email: "helper-to-be@example.com", roleKey: "helper" }) { invitation { id } } }`, { org: t.org.id }, { as: t.owner })).inviteMember.invitation.id;
    expect(codes(await app.gql(DELETE, { id: roleId }, { as: t.owner }))).toEqual(['CONFLICT']);
    ok(await app.gql(`mutation($id: ID!) { revokeInvitation(id: $id) { id } }`, { id: invitation }, { as: t.owner }));
    expect(ok(await app.gql(DELETE, { id: roleId }, { as: t.owner })).deleteRole).toBe(true);
    expect(await customRoles(t.org.id)).toEqual([]);
    expect(await auditActions(t.org.id)).toEqual(['role.created', 'role.deleted']);
    expect(codes(await app.gql(DELETE, { id: roleId }, { as: t.owner }))).toEqual(['NOT_FOUND']);
  });
});

describe('plan feature custom_roles', () => {
  it('switched off by an override: createRole, updateRole and deleteRole are FEATURE_DISABLED (extensions.feature) and change nothing; on again at the next request', async () => {
    const t = await team('feature');
    const roleId = ok(await app.gql(CREATE, { org: t.org.id, input: { key: 'kept', name: 'Kept', permissions: ['org.view'] } }, { as: t.owner })).createRole.id;
    const toggle = (enabled: boolean) =>
      app.gql(`mutation($org: ID!, $on: Boolean!) { setFeatureFlag(organizationId: $org, key: "custom_roles", enabled: $on) { key enabled } }`, { org: t.org.id, on: enabled }, { as: t.owner });
    expect(ok(await toggle(false)).setFeatureFlag).toEqual({ key: 'custom_roles', enabled: false });
    const refused = [
      await app.gql(CREATE, { org: t.org.id, input: { key: 'fresh', name: 'Fresh', permissions: [] } }, { as: t.owner }),
      await app.gql(UPDATE, { id: roleId, input: { name: 'Changed' } }, { as: t.owner }),
      await app.gql(DELETE, { id: roleId }, { as: t.owner }),
    ];
    for (const r of refused) expect({ codes: codes(r), feature: r.errors?.[0]?.extensions?.feature }).toEqual({ codes: ['FEATURE_DISABLED'], feature: 'custom_roles' });
    // The precedence of SPEC §6: escalation (FORBIDDEN) and bad input come before the feature.
    expect(codes(await app.gql(CREATE, { org: t.org.id, input: { key: 'x1', name: 'X', permissions: ['org.delete'] } }, { as: t.admin }))).toEqual(['FORBIDDEN']);
    expect(error(await app.gql(CREATE, { org: t.org.id, input: { key: 'X', name: 'X', permissions: [] } }, { as: t.owner }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'key' });
    expect(await customRoles(t.org.id)).toEqual([{ key: 'kept', name: 'Kept', permissions: ['org.view'] }]);
    expect(await auditActions(t.org.id)).toEqual(['role.created']);
    ok(await toggle(true));
    ok(await app.gql(UPDATE, { id: roleId, input: { name: 'Changed' } }, { as: t.owner }));
  });
});

describe('isolation', () => {
  it("another organization's role ids answer NOT_FOUND exactly like random and malformed ids, and are left alone", async () => {
    const mine = await team('iso-mine');
    const theirs = await team('iso-theirs');
    const theirRole = ok(await app.gql(CREATE, { org: theirs.org.id, input: { key: 'theirs', name: 'Theirs', permissions: ['org.view'] } }, { as: theirs.owner })).createRole.id;
    const { roles } = ok(await app.gql(ROLES, { id: theirs.org.id }, { as: theirs.owner })).organization;
    const theirSystemRole = roles.find((r: { key: string }) => r.key === 'admin').id;
    const answers = new Set<string>();
    for (const id of [theirRole, theirSystemRole, randomUUID(), 'nope']) {
      for (const [doc, vars] of [
        [UPDATE, { id, input: { name: 'Pwned' } }],
        [DELETE, { id }],
      ] as const) {
        const r = await app.gql(doc, vars, { as: mine.owner });
        answers.add(JSON.stringify({ codes: codes(r), message: r.errors?.[0]?.message, data: r.data }));
      }
    }
    expect([...answers]).toEqual([JSON.stringify({ codes: ['NOT_FOUND'], message: 'Role not found', data: null })]);
    // Their custom role key is unknown here: assigning it is bad input, like any unknown key.
    expect(error(await app.gql(ASSIGN, { org: mine.org.id, user: mine.memberId, role: 'theirs' }, { as: mine.owner }))).toEqual({ code: 'BAD_USER_INPUT', reason: undefined, field: 'roleKey' });
    expect(await customRoles(theirs.org.id)).toEqual([{ key: 'theirs', name: 'Theirs', permissions: ['org.view'] }]);
  });
});
