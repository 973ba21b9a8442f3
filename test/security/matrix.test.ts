import { getMetadataStorage } from 'type-graphql';
import { FIELD_GUARDS, type Guard, OPERATION_GUARDS } from '../../src/authz/operations';
import { MACHINE_ONLY_PERMISSIONS, PERMISSION_CATALOG, SYSTEM_ROLES } from '../../src/authz/permissions';
import { codes, ok, startTestApp, type TestApp } from '../helpers/app';
import { addMember, createOrganization, uniqueEmail } from '../helpers/factories';

/**
 * The role × operation matrix, generated from the matrix data (OPERATION_GUARDS, FIELD_GUARDS,
 * SYSTEM_ROLES) and checked against the running service; the data itself is checked against SPEC §4.
 */
let app: TestApp;

const ROLE_KEYS = SYSTEM_ROLES.map((r) => r.key);
type Actor = (typeof ROLE_KEYS)[number] | 'non-member' | 'anonymous';
const ACTORS: Actor[] = [...ROLE_KEYS, 'non-member', 'anonymous'];
const permissionsOf = (role: string): readonly string[] => SYSTEM_ROLES.find((r) => r.key === role)!.permissions;

interface Fixture {
  orgId: string;
  workspaceId: string;
  /** A destroyed environment: updates fail on input, destroys on state, nothing changes. */
  environmentId: string;
  bystanderId: string;
  /** The organization's `viewer` system role: not editable, so a holder's call changes nothing. */
  systemRoleId: string;
  /** A revoked invitation: resending or revoking it fails on its state, nothing changes. */
  invitationId: string;
  emails: Record<string, string>;
}
const fx = { emails: {} } as Fixture;

interface Case {
  document: string;
  variables: (f: Fixture) => Record<string, unknown>;
  /** The exact error codes a holder of the permission gets ([] = success). */
  holder: string[];
  extensions?: Record<string, unknown>;
  /** The audit action a successful holder call writes. */
  audit?: string;
}

const CASES: Record<string, Case> = {
  inviteMember: {
    document: `mutation($id: ID!, $input: InviteMemberInput!) { inviteMember(organizationId: $id, input: $input) { token } }`,
    variables: (f) => ({ id: f.orgId, input: { email: 'matrix-invitee@example.com', roleKey: 'viewer', expiresInDays: 0 } }),
    holder: ['BAD_USER_INPUT'],
    extensions: { field: 'expiresInDays' },
  },
  resendInvitation: {
    document: `mutation($id: ID!) { resendInvitation(id: $id) { token } }`,
    variables: (f) => ({ id: f.invitationId }),
    holder: ['PRECONDITION_FAILED'],
    extensions: { reason: 'INVITATION_REVOKED' },
  },
  revokeInvitation: {
    document: `mutation($id: ID!) { revokeInvitation(id: $id) { id } }`,
    variables: (f) => ({ id: f.invitationId }),
    holder: ['PRECONDITION_FAILED'],
    extensions: { reason: 'INVITATION_REVOKED' },
  },
  updateOrganization: {
    document: `mutation($id: ID!, $input: UpdateOrganizationInput!) { updateOrganization(id: $id, input: $input) { id } }`,
    variables: (f) => ({ id: f.orgId, input: { name: '' } }),
    holder: ['BAD_USER_INPUT'],
    extensions: { field: 'name' },
  },
  deleteOrganization: {
    document: `mutation($id: ID!) { deleteOrganization(id: $id, confirmSlug: "nope") { id } }`,
    variables: (f) => ({ id: f.orgId }),
    holder: ['BAD_USER_INPUT'],
    extensions: { field: 'confirmSlug' },
  },
  restoreOrganization: {
    document: `mutation($id: ID!) { restoreOrganization(id: $id) { id } }`,
    variables: (f) => ({ id: f.orgId }),
    holder: ['PRECONDITION_FAILED'],
    extensions: { reason: 'ORGANIZATION_NOT_DELETED' },
  },
  changeOrganizationSlug: {
    document: `mutation($id: ID!, $slug: String!) { changeOrganizationSlug(id: $id, slug: $slug) { id } }`,
    variables: (f) => ({ id: f.orgId, slug: 'Bad Slug' }),
    holder: ['BAD_USER_INPUT'],
    extensions: { field: 'slug' },
  },
  createWorkspace: {
    document: `mutation($id: ID!, $input: CreateWorkspaceInput!) { createWorkspace(organizationId: $id, input: $input) { id } }`,
    variables: (f) => ({ id: f.orgId, input: { name: '' } }),
    holder: ['BAD_USER_INPUT'],
    extensions: { field: 'name' },
  },
  updateWorkspace: {
    document: `mutation($id: ID!, $input: UpdateWorkspaceInput!) { updateWorkspace(id: $id, input: $input) { id } }`,
    variables: (f) => ({ id: f.workspaceId, input: { name: '' } }),
    holder: ['BAD_USER_INPUT'],
    extensions: { field: 'name' },
  },
  deleteWorkspace: {
    document: `mutation($id: ID!) { deleteWorkspace(id: $id) }`,
    variables: (f) => ({ id: f.workspaceId }),
    holder: ['PRECONDITION_FAILED'],
    extensions: { reason: 'DEFAULT_WORKSPACE' },
  },
  setWorkspaceMemberRole: {
    document: `mutation($ws: ID!, $user: ID!) { setWorkspaceMemberRole(workspaceId: $ws, userId: $user, role: WORKSPACE_VIEWER) { id } }`,
    variables: (f) => ({ ws: f.workspaceId, user: f.bystanderId }),
    holder: [],
    audit: 'workspace.member_role_changed',
  },
  createEnvironment: {
    document: `mutation($ws: ID!, $input: CreateEnvironmentInput!) { createEnvironment(workspaceId: $ws, input: $input) { id } }`,
    variables: (f) => ({ ws: f.workspaceId, input: { name: '', tier: 'DEV', resources: { cpu: 0.5, ramMb: 512, diskGb: 5 } } }),
    holder: ['BAD_USER_INPUT'],
    extensions: { field: 'name' },
  },
  updateEnvironment: {
    document: `mutation($id: ID!, $input: UpdateEnvironmentInput!) { updateEnvironment(id: $id, input: $input) { id } }`,
    variables: (f) => ({ id: f.environmentId, input: { name: '' } }),
    holder: ['BAD_USER_INPUT'],
    extensions: { field: 'name' },
  },
  destroyEnvironment: {
    document: `mutation($id: ID!) { destroyEnvironment(id: $id) { id } }`,
    variables: (f) => ({ id: f.environmentId }),
    holder: ['PRECONDITION_FAILED'],
  },
  updateMemberRole: {
    document: `mutation($org: ID!, $user: ID!) { updateMemberRole(organizationId: $org, userId: $user, roleKey: "owner") { id } }`,
    variables: (f) => ({ org: f.orgId, user: f.bystanderId }),
    holder: ['BAD_USER_INPUT'],
    extensions: { field: 'roleKey' },
  },
  removeMember: {
    document: `mutation($org: ID!, $user: ID!) { removeMember(organizationId: $org, userId: $user) }`,
    variables: (f) => ({ org: f.orgId, user: '00000000-0000-4000-8000-000000000000' }),
    holder: ['NOT_FOUND'],
  },
  transferOwnership: {
    document: `mutation($org: ID!, $user: ID!) { transferOwnership(organizationId: $org, newOwnerId: $user, confirmation: "nope") { id } }`,
    variables: (f) => ({ org: f.orgId, user: f.bystanderId }),
    holder: ['BAD_USER_INPUT'],
    extensions: { field: 'confirmation' },
  },
  createRole: {
    document: `mutation($org: ID!) { createRole(organizationId: $org, input: { key: "Bad Key", name: "x", permissions: [] }) { id } }`,
    variables: (f) => ({ org: f.orgId }),
    holder: ['BAD_USER_INPUT'],
    extensions: { field: 'key' },
  },
  updateRole: {
    document: `mutation($id: ID!) { updateRole(id: $id, input: { name: "Mine" }) { id } }`,
    variables: (f) => ({ id: f.systemRoleId }),
    holder: ['PRECONDITION_FAILED'],
    extensions: { reason: 'SYSTEM_ROLE' },
  },
  deleteRole: {
    document: `mutation($id: ID!) { deleteRole(id: $id) }`,
    variables: (f) => ({ id: f.systemRoleId }),
    holder: ['PRECONDITION_FAILED'],
    extensions: { reason: 'SYSTEM_ROLE' },
  },
  setFeatureFlag: {
    document: `mutation($id: ID!) { setFeatureFlag(organizationId: $id, key: "Not A Key", enabled: true) { key } }`,
    variables: (f) => ({ id: f.orgId }),
    holder: ['BAD_USER_INPUT'],
    extensions: { field: 'key' },
  },
  // The fixture has five members: FREE (3) is refused on usage, nothing changes.
  changePlan: {
    document: `mutation($org: ID!) { changePlan(organizationId: $org, plan: FREE) { id } }`,
    variables: (f) => ({ org: f.orgId }),
    holder: ['PRECONDITION_FAILED'],
    extensions: { reason: 'USAGE_EXCEEDS_PLAN', resource: 'MEMBERS' },
  },
  // Rows run in order: the owner's cancellation (at the period end) is undone by the owner's resumption below.
  cancelSubscription: {
    document: `mutation($org: ID!) { cancelSubscription(organizationId: $org) { status } }`,
    variables: (f) => ({ org: f.orgId }),
    holder: [],
    audit: 'subscription.cancelled',
  },
  resumeSubscription: {
    document: `mutation($org: ID!) { resumeSubscription(organizationId: $org) { status } }`,
    variables: (f) => ({ org: f.orgId }),
    holder: [],
    audit: 'subscription.resumed',
  },
};

/** SPEC §4: the permission each guarded mutation needs. */
const SPEC_MUTATION_PERMISSIONS: Record<string, string> = {
  updateOrganization: 'org.settings.update',
  changeOrganizationSlug: 'org.settings.update',
  deleteOrganization: 'org.delete',
  restoreOrganization: 'org.delete',
  createWorkspace: 'workspace.create',
  updateWorkspace: 'workspace.update',
  deleteWorkspace: 'workspace.delete',
  setWorkspaceMemberRole: 'workspace.members.manage',
  createEnvironment: 'environment.create',
  updateEnvironment: 'environment.update',
  destroyEnvironment: 'environment.destroy',
  updateMemberRole: 'org.members.update_role',
  removeMember: 'org.members.remove',
  transferOwnership: 'org.transfer',
  createRole: 'org.roles.manage',
  updateRole: 'org.roles.manage',
  deleteRole: 'org.roles.manage',
  setFeatureFlag: 'org.features.manage',
  changePlan: 'org.billing.manage',
  cancelSubscription: 'org.billing.manage',
  resumeSubscription: 'org.billing.manage',
  inviteMember: 'org.members.invite',
  resendInvitation: 'org.members.invite',
  revokeInvitation: 'org.members.invite',
};

const SCOPED_KINDS = ['organization', 'workspace', 'environment', 'invitation', 'role'];
/** Mutations the service registers (its resolvers are loaded by the test helper's import of the server). */
const REGISTERED = new Set(getMetadataStorage().mutations.map((m) => m.schemaName));
const GUARDED = Object.entries(OPERATION_GUARDS.Mutation).filter(
  (entry): entry is [string, Extract<Guard, { permission: string }>] => SCOPED_KINDS.includes(entry[1].kind) && REGISTERED.has(entry[0]),
);

function expectation(actor: Actor, guard: Extract<Guard, { permission: string }>): string {
  if (actor === 'anonymous') return 'UNAUTHENTICATED';
  if (actor === 'non-member') return 'NOT_FOUND';
  return permissionsOf(actor).includes(guard.permission) ? 'HOLDER' : 'FORBIDDEN';
}
const ROWS = GUARDED.flatMap(([name, guard]) =>
  ACTORS.map((actor) => {
    const expected = expectation(actor, guard);
    const label = expected === 'HOLDER' ? `allowed (${CASES[name]?.holder.join(', ') || 'success'})` : expected;
    return { name, actor, expected, label };
  }),
);

const gqlAs = (actor: Actor, document: string, variables: Record<string, unknown>) =>
  app.gql(document, variables, actor === 'anonymous' ? {} : { as: fx.emails[actor] });

beforeAll(async () => {
  app = await startTestApp();
  for (const actor of ACTORS) fx.emails[actor] = uniqueEmail(actor);
  const org = await createOrganization(app, fx.emails.owner!, { name: 'Matrix Org' });
  fx.orgId = org.id;
  fx.workspaceId = org.defaultWorkspaceId;
  for (const role of ROLE_KEYS.filter((r) => r !== 'owner')) await addMember(app, org.id, fx.emails[role]!, role);
  fx.bystanderId = await addMember(app, org.id, uniqueEmail('bystander'), 'viewer');
  ok(await app.gql(`{ me { user { id } } }`, {}, { as: fx.emails['non-member'] }));
  const [env] = await app.db.withConnection((r) =>
    r.query(
      `WITH ins AS (INSERT INTO environments (organization_id, workspace_id, name, slug, tier, cpu, ram_mb, disk_gb, is_active, destroyed_at)
         VALUES ($1, $2, 'Gone', 'gone', 'DEV', 0.5, 512, 5, false, now()) RETURNING id) SELECT id FROM ins`,
      [org.id, org.defaultWorkspaceId],
    ),
  );
  fx.environmentId = env.id;
  const [role] = await app.db.withConnection((r) => r.query(`SELECT id FROM roles WHERE organization_id = $1 AND key = 'viewer'`, [org.id]));
  fx.systemRoleId = role.id;
  // Written straight to the table: the fixture must add no audit event of its own.
  const [invitation] = await app.db.withConnection((r) =>
    r.query(
      `INSERT INTO invitations (organization_id, email, role_key, token_hash, status, valid_days, expires_at, revoked_at)
       VALUES ($1, 'matrix-revoked@example.com', 'viewer', sha256('matrix'::bytea), 'REVOKED', 7, now() + interval '7 days', now()) RETURNING id`,
      [org.id],
    ),
  );
  fx.invitationId = invitation.id;
});
afterAll(async () => {
  await app?.close();
});

describe('the matrix data matches SPEC §4', () => {
  it('system roles hold exactly the permissions of the spec table', () => {
    const all = PERMISSION_CATALOG.map((p) => p.code).filter((c) => !MACHINE_ONLY_PERMISSIONS.includes(c));
    const sorted = (list: readonly string[]) => [...list].sort();
    expect(Object.fromEntries(SYSTEM_ROLES.map((r) => [r.key, sorted(r.permissions)]))).toEqual({
      owner: sorted(all),
      admin: sorted(all.filter((c) => !['org.delete', 'org.transfer', 'org.billing.manage'].includes(c))),
      member: sorted(['org.view', 'org.members.list', 'workspace.view', 'environment.create', 'environment.update']),
      viewer: sorted(['org.view', 'org.members.list', 'workspace.view']),
    });
  });

  it('every guarded mutation needs the permission the spec names; Organization fields likewise', () => {
    for (const [name, guard] of Object.entries(OPERATION_GUARDS.Mutation)) {
      if ('permission' in guard) expect([name, guard.permission]).toEqual([name, SPEC_MUTATION_PERMISSIONS[name]]);
    }
    expect(FIELD_GUARDS.Organization).toEqual({
      '*': 'org.view',
      settings: 'org.settings.view',
      security: 'org.settings.view',
      members: 'org.members.list',
      roles: 'org.members.list',
      auditEvents: 'org.audit.view',
      invitations: 'org.members.invite',
      deletionImpact: 'org.delete',
      subscription: 'org.billing.view',
    });
  });

  it('the served schema (introspection) has a guard for every mutation and a matrix row for every scoped one', async () => {
    const data = ok(await app.gql(`{ __schema { mutationType { fields { name } } } }`, {}, { as: fx.emails.owner }));
    const served: string[] = data.__schema.mutationType.fields.map((f: { name: string }) => f.name);
    expect(served.filter((name) => !(name in OPERATION_GUARDS.Mutation))).toEqual([]);
    const scoped = served.filter((name) => SCOPED_KINDS.includes(OPERATION_GUARDS.Mutation[name]!.kind)).sort();
    expect([...new Set(ROWS.map((r) => r.name))].sort()).toEqual(scoped);
    expect(scoped.filter((name) => !CASES[name])).toEqual([]);
  });
});

describe('role × mutation matrix', () => {
  test.each(ROWS)('$name as $actor → $label', async ({ name, actor, expected }) => {
    const c = CASES[name];
    if (!c) throw new Error(`no variables for ${name}: add it to CASES`);
    const result = await gqlAs(actor, c.document, c.variables(fx));
    if (expected !== 'HOLDER') {
      expect(codes(result)).toEqual([expected]);
      return;
    }
    expect(codes(result)).toEqual(c.holder);
    if (c.extensions) expect(result.errors![0]!.extensions).toMatchObject(c.extensions);
  });

  it('left the organization as it was, apart from the audited successful calls', async () => {
    const audits = ROWS.filter((r) => r.expected === 'HOLDER' && CASES[r.name]?.audit).map((r) => CASES[r.name]!.audit!);
    const data = ok(await app.gql(
      `query($id: ID!) { organization(id: $id) { name slug workspaceCount environmentCount auditEvents(first: 100) { nodes { action } } } }`,
      { id: fx.orgId },
      { as: fx.emails.owner },
    ));
    expect(data.organization).toMatchObject({ name: 'Matrix Org', workspaceCount: 1, environmentCount: 0 });
    expect(data.organization.auditEvents.nodes.map((n: { action: string }) => n.action).sort()).toEqual(['organization.created', ...audits].sort());
  });
});

describe('field matrix on Organization', () => {
  const SELECTIONS: Record<string, string> = {
    settings: 'settings { timezone }',
    security: 'security { requireMfa }',
    members: 'members { totalCount }',
    roles: 'roles { key }',
    auditEvents: 'auditEvents(first: 1) { edges { cursor } }',
    invitations: 'invitations { totalCount }',
    deletionImpact: 'deletionImpact { blockers }',
    subscription: 'subscription { status }',
  };
  const FIELDS = Object.keys(FIELD_GUARDS.Organization).filter((f) => f !== '*');

  test.each(ROLE_KEYS)('as %s: a guarded field is null with FORBIDDEN exactly when the role lacks its permission', async (role) => {
    const missing = FIELDS.filter((f) => !SELECTIONS[f]);
    expect(missing).toEqual([]);
    const query = `query($id: ID!) { organization(id: $id) { id name ${FIELDS.map((f) => SELECTIONS[f]).join(' ')} } }`;
    const result = await app.gql(query, { id: fx.orgId }, { as: fx.emails[role] });
    const forbidden = FIELDS.filter((f) => !permissionsOf(role).includes(FIELD_GUARDS.Organization[f]!));
    expect(result.data?.organization).toMatchObject({ id: fx.orgId, name: 'Matrix Org' });
    for (const f of FIELDS) {
      if (forbidden.includes(f)) expect([f, result.data!.organization[f]]).toEqual([f, null]);
      else expect([f, result.data!.organization[f]]).not.toEqual([f, null]);
    }
    const errors = (result.errors ?? []).map((e) => ({ path: e.path, code: e.extensions?.code }));
    const byPath = (a: { path?: unknown }, b: { path?: unknown }) => String(a.path).localeCompare(String(b.path));
    expect(errors.sort(byPath)).toEqual(forbidden.map((f) => ({ path: ['organization', f], code: 'FORBIDDEN' })).sort(byPath));
  });
});

describe('viewerPermissions and me.permissions', () => {
  test.each(ROLE_KEYS)('as %s: exactly the sorted permissions of the role', async (role) => {
    const data = ok(await app.gql(
      `query($id: ID!) { organization(id: $id) { viewerPermissions } me { permissions(organizationId: $id) } }`,
      { id: fx.orgId },
      { as: fx.emails[role] },
    ));
    const expected = [...permissionsOf(role)].sort();
    expect(data.organization.viewerPermissions).toEqual(expected);
    expect(data.me.permissions).toEqual(expected);
  });
});
