import { randomUUID } from 'node:crypto';
import { getMetadataStorage } from 'type-graphql';
import { systemPrincipal } from '../../src/auth/principal';
import { FIELD_GUARDS, type Guard, OPERATION_GUARDS } from '../../src/authz/operations';
import {
  MACHINE_ONLY_PERMISSIONS,
  PERMISSION_CATALOG,
  type Permission,
  ROLE_ASSIGNABLE_PERMISSIONS,
  SEES_RESTRICTED_WORKSPACES,
  SYSTEM_ROLES,
  WORKSPACE_ROLE_PERMISSIONS,
} from '../../src/authz/permissions';
import { TenantTransaction } from '../../src/database/tenant-transaction';
import { codes, type GqlResult, ok, startTestApp, type TestApp } from '../helpers/app';
import { addMember, createOrganization, setFeatureFlag, uniqueEmail } from '../helpers/factories';
import { ORGANIZATION_FIELD_SELECTIONS } from '../helpers/guarded-fields';

/**
 * The role × operation matrix, generated from the matrix data (OPERATION_GUARDS, FIELD_GUARDS,
 * SYSTEM_ROLES, WORKSPACE_ROLE_PERMISSIONS, SEES_RESTRICTED_WORKSPACES) and checked against the
 * running service; the data itself is checked against SPEC §4.
 *
 * Actors: each system role, a custom role holding a middle set of permissions, each workspace
 * role (granted to a `viewer` of the organization in the default workspace), a signed-in
 * non-member and an anonymous caller. Workspace-scoped operations run twice on the default
 * workspace: while it is ORGANIZATION (every organization role applies) and once it is
 * RESTRICTED (only the roles of SEES_RESTRICTED_WORKSPACES and workspace grants reach it).
 * Every expected outcome is computed from the data: effective permissions in a workspace =
 * organization role (where the workspace is visible through it) ∪ workspace role.
 */
let app: TestApp;

type WorkspaceRoleKey = keyof typeof WORKSPACE_ROLE_PERMISSIONS;
type Visibility = 'ORGANIZATION' | 'RESTRICTED';

/** A custom role of the fixture: more than a member, less than an admin (no org.settings.*, no roles, no billing). */
const CUSTOM_ROLE = {
  key: 'operator',
  permissions: [
    'org.view',
    'org.members.list',
    'org.members.invite',
    'org.members.update_role',
    'org.audit.view',
    'workspace.create',
    'workspace.view',
    'environment.create',
    'environment.update',
    'environment.destroy',
  ] as Permission[],
};

interface ActorDef {
  key: string;
  /** The organization role key (null: not a member). */
  orgRole: string | null;
  /** The workspace role granted in the default workspace. */
  grant: WorkspaceRoleKey | null;
  anonymous?: boolean;
}
const WORKSPACE_ROLE_KEYS = Object.keys(WORKSPACE_ROLE_PERMISSIONS) as WorkspaceRoleKey[];
const ROLE_KEYS = SYSTEM_ROLES.map((r) => r.key);
const ACTOR_DEFS: ActorDef[] = [
  ...ROLE_KEYS.map((key) => ({ key, orgRole: key, grant: null })),
  { key: 'custom', orgRole: CUSTOM_ROLE.key, grant: null },
  // Workspace roles go to viewers: the organization role alone does not reach what the grant adds.
  ...WORKSPACE_ROLE_KEYS.map((grant) => ({ key: grant, orgRole: 'viewer', grant })),
  { key: 'non-member', orgRole: null, grant: null },
  { key: 'anonymous', orgRole: null, grant: null, anonymous: true },
];
type Actor = string;
const ACTORS: Actor[] = ACTOR_DEFS.map((a) => a.key);
const MEMBER_ACTORS = ACTOR_DEFS.filter((a) => a.orgRole !== null);
const actorDef = (key: Actor): ActorDef => ACTOR_DEFS.find((a) => a.key === key)!;

/** The permissions of an organization role key, system or the fixture's custom role. */
const permissionsOfRole = (role: string | null): readonly Permission[] => {
  if (role === null) return [];
  if (role === CUSTOM_ROLE.key) return CUSTOM_ROLE.permissions;
  return SYSTEM_ROLES.find((r) => r.key === role)!.permissions;
};
const orgPermissions = (actor: Actor): Set<Permission> => new Set(permissionsOfRole(actorDef(actor).orgRole));
/** Effective permissions in the default workspace under a visibility: organization role where it applies ∪ workspace role. */
function workspacePermissions(actor: Actor, visibility: Visibility): Set<Permission> {
  const def = actorDef(actor);
  if (def.orgRole === null) return new Set();
  const orgApplies = visibility === 'ORGANIZATION' || SEES_RESTRICTED_WORKSPACES.includes(def.orgRole);
  const result = new Set<Permission>(orgApplies ? permissionsOfRole(def.orgRole) : []);
  if (def.grant) for (const p of WORKSPACE_ROLE_PERMISSIONS[def.grant]) result.add(p);
  return result;
}
const sorted = (list: Iterable<string>) => [...list].sort();

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
  /** A revoked API key: revoking it again fails on its state, nothing changes. */
  apiKeyId: string;
  emails: Record<string, string>;
  /** Audit actions the fixture's own calls wrote. */
  fixtureAudits: string[];
}
const fx = { emails: {}, fixtureAudits: [] as string[] } as Fixture;

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
  // An invalid key: refused after the permission check, nothing stored.
  setSecret: {
    document: `mutation($id: ID!) { setSecret(organizationId: $id, key: "not-a-key", value: "v") { key } }`,
    variables: (f) => ({ id: f.orgId }),
    holder: ['BAD_USER_INPUT'],
    extensions: { field: 'key' },
  },
  deleteSecret: {
    document: `mutation($id: ID!) { deleteSecret(organizationId: $id, key: "not-a-key") }`,
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
  // A lifetime of 0 days: refused after the permission and scope checks, nothing stored.
  createApiKey: {
    document: `mutation($org: ID!) { createApiKey(organizationId: $org, input: { name: "matrix", scopes: ["org.view"], expiresInDays: 0 }) { secret } }`,
    variables: (f) => ({ org: f.orgId }),
    holder: ['BAD_USER_INPUT'],
    extensions: { field: 'expiresInDays' },
  },
  revokeApiKey: {
    document: `mutation($id: ID!) { revokeApiKey(id: $id) { id } }`,
    variables: (f) => ({ id: f.apiKeyId }),
    holder: ['PRECONDITION_FAILED'],
    extensions: { reason: 'API_KEY_REVOKED' },
  },
  // A malformed notification type: refused after the permission check, nothing stored.
  setOrganizationNotificationDefault: {
    document: `mutation($org: ID!) { setOrganizationNotificationDefault(organizationId: $org, type: "Not A Type", channel: NONE) { type } }`,
    variables: (f) => ({ org: f.orgId }),
    holder: ['BAD_USER_INPUT'],
    extensions: { field: 'type' },
  },
  setNotificationPreference: {
    document: `mutation($org: ID!) { setNotificationPreference(organizationId: $org, type: "Not A Type", channel: NONE) { emailDigest } }`,
    variables: (f) => ({ org: f.orgId }),
    holder: ['BAD_USER_INPUT'],
    extensions: { field: 'type' },
  },
  // Each member's own choice (unchanged: off), audited.
  setNotificationDigest: {
    document: `mutation($org: ID!) { setNotificationDigest(organizationId: $org, emailDigest: false) { emailDigest } }`,
    variables: (f) => ({ org: f.orgId }),
    holder: [],
    audit: 'notification.digest_changed',
  },
  // No role holds notifications.publish (API keys only): every member is FORBIDDEN.
  publishNotification: {
    document: `mutation($org: ID!) { publishNotification(organizationId: $org, input: { type: "Not A Type", title: "t", audience: ALL_MEMBERS }) }`,
    variables: (f) => ({ org: f.orgId }),
    holder: ['BAD_USER_INPUT'],
    extensions: { field: 'type' },
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
  setSecret: 'org.secrets.manage',
  deleteSecret: 'org.secrets.manage',
  changePlan: 'org.billing.manage',
  cancelSubscription: 'org.billing.manage',
  resumeSubscription: 'org.billing.manage',
  inviteMember: 'org.members.invite',
  resendInvitation: 'org.members.invite',
  revokeInvitation: 'org.members.invite',
  createApiKey: 'org.api_keys.manage',
  revokeApiKey: 'org.api_keys.manage',
  setOrganizationNotificationDefault: 'org.settings.update',
  // A member's own notification settings: what every role of the organization holds.
  setNotificationPreference: 'org.view',
  setNotificationDigest: 'org.view',
  publishNotification: 'notifications.publish',
};

const SCOPED_KINDS = ['organization', 'workspace', 'environment', 'invitation', 'role', 'apiKey'];
const WORKSPACE_KINDS = ['workspace', 'environment'];
/** Mutations the service registers (its resolvers are loaded by the test helper's import of the server). */
const REGISTERED = new Set(getMetadataStorage().mutations.map((m) => m.schemaName));
const GUARDED = Object.entries(OPERATION_GUARDS.Mutation).filter(
  (entry): entry is [string, Extract<Guard, { permission: string }>] => SCOPED_KINDS.includes(entry[1].kind) && REGISTERED.has(entry[0]),
);

/**
 * The outcome the rules must give (SPEC §6 order): UNAUTHENTICATED, then NOT_FOUND where the scope
 * is not visible (not a member; a workspace without workspace.view), then FORBIDDEN.
 */
function expectation(actor: Actor, guard: Extract<Guard, { permission: string }>, visibility: Visibility): string {
  const def = actorDef(actor);
  if (def.anonymous) return 'UNAUTHENTICATED';
  if (def.orgRole === null) return 'NOT_FOUND';
  if (WORKSPACE_KINDS.includes(guard.kind)) {
    const held = workspacePermissions(actor, visibility);
    if (!held.has('workspace.view')) return 'NOT_FOUND';
    return held.has(guard.permission) ? 'HOLDER' : 'FORBIDDEN';
  }
  const held = orgPermissions(actor);
  if (!held.has('org.view')) return 'FORBIDDEN';
  return held.has(guard.permission) ? 'HOLDER' : 'FORBIDDEN';
}
const rowsFor = (visibility: Visibility, kinds: (kind: string) => boolean) =>
  GUARDED.filter(([, guard]) => kinds(guard.kind)).flatMap(([name, guard]) =>
    ACTORS.map((actor) => {
      const expected = expectation(actor, guard, visibility);
      const label = expected === 'HOLDER' ? `allowed (${CASES[name]?.holder.join(', ') || 'success'})` : expected;
      return { name, actor, expected, label, visibility };
    }),
  );
/** Every guarded mutation while the default workspace is ORGANIZATION; the workspace-scoped ones again once it is RESTRICTED. */
const ROWS = rowsFor('ORGANIZATION', () => true);
const RESTRICTED_ROWS = rowsFor('RESTRICTED', (kind) => WORKSPACE_KINDS.includes(kind));

const gqlAs = (actor: Actor, document: string, variables: Record<string, unknown>) =>
  app.gql(document, variables, actorDef(actor).anonymous ? {} : { as: fx.emails[actor] });

const asSystem = (organizationId: string, sql: string, params: unknown[]) =>
  TenantTransaction.run(app.db, systemPrincipal(organizationId, 'test:matrix'), randomUUID(), (tx) => tx.query(sql, params));

beforeAll(async () => {
  app = await startTestApp();
  for (const actor of ACTORS) fx.emails[actor] = uniqueEmail(actor);
  const org = await createOrganization(app, fx.emails.owner!, { name: 'Matrix Org' });
  fx.fixtureAudits.push('organization.created');
  fx.orgId = org.id;
  fx.workspaceId = org.defaultWorkspaceId;
  // The custom role, written straight to the table (as a job would): the fixture adds no role.created event.
  await asSystem(org.id, `INSERT INTO roles (organization_id, key, name, permissions) VALUES ($1, $2, 'Operator', $3)`, [org.id, CUSTOM_ROLE.key, CUSTOM_ROLE.permissions]);
  const ids: Record<string, string> = {};
  for (const def of MEMBER_ACTORS.filter((a) => a.orgRole !== 'owner')) ids[def.key] = await addMember(app, org.id, fx.emails[def.key]!, def.orgRole!);
  fx.bystanderId = await addMember(app, org.id, uniqueEmail('bystander'), 'viewer');
  for (const def of MEMBER_ACTORS.filter((a) => a.grant)) {
    ok(await app.gql(
      `mutation($ws: ID!, $user: ID!, $role: WorkspaceRole) { setWorkspaceMemberRole(workspaceId: $ws, userId: $user, role: $role) { id } }`,
      { ws: org.defaultWorkspaceId, user: ids[def.key], role: def.grant },
      { as: fx.emails.owner },
    ));
    fx.fixtureAudits.push('workspace.member_role_changed');
  }
  // RESTRICTED workspaces need the plan feature, which the trial plan (PRO) lacks.
  await setFeatureFlag(app, org.id, 'restricted_workspaces', true, fx.emails.owner!);
  fx.fixtureAudits.push('feature.toggled');
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
  const [apiKey] = await app.db.withConnection((r) =>
    r.query(
      `INSERT INTO api_keys (organization_id, name, prefix, secret_hash, scopes, expires_at, revoked_at)
       VALUES ($1, 'matrix-revoked', 'tsk_matrix00', sha256('matrix'::bytea), '{org.view}', now() + interval '7 days', now()) RETURNING id`,
      [org.id],
    ),
  );
  fx.apiKeyId = apiKey.id;
});
afterAll(async () => {
  await app?.close();
});

/** Makes the default workspace RESTRICTED through the API (the owner's call is audited and accounted for). */
async function restrictDefaultWorkspace(): Promise<void> {
  ok(await app.gql(
    `mutation($id: ID!) { updateWorkspace(id: $id, input: { visibility: RESTRICTED }) { id visibility } }`,
    { id: fx.workspaceId },
    { as: fx.emails.owner },
  ));
  fx.fixtureAudits.push('workspace.updated');
}

describe('the matrix data matches SPEC §4', () => {
  it('system roles hold exactly the permissions of the spec table', () => {
    const all = PERMISSION_CATALOG.map((p) => p.code).filter((c) => !MACHINE_ONLY_PERMISSIONS.includes(c));
    expect(Object.fromEntries(SYSTEM_ROLES.map((r) => [r.key, sorted(r.permissions)]))).toEqual({
      owner: sorted(all),
      admin: sorted(all.filter((c) => !['org.delete', 'org.transfer', 'org.billing.manage'].includes(c))),
      member: sorted(['org.view', 'org.members.list', 'workspace.view', 'environment.create', 'environment.update']),
      viewer: sorted(['org.view', 'org.members.list', 'workspace.view']),
    });
  });

  it('workspace roles add exactly the permissions of the spec; only owner and admin see RESTRICTED workspaces', () => {
    expect(Object.fromEntries(Object.entries(WORKSPACE_ROLE_PERMISSIONS).map(([k, v]) => [k, sorted(v)]))).toEqual({
      WORKSPACE_ADMIN: sorted(['workspace.view', 'workspace.update', 'workspace.members.manage', 'environment.create', 'environment.update', 'environment.destroy']),
      WORKSPACE_MEMBER: sorted(['workspace.view', 'environment.create', 'environment.update']),
      WORKSPACE_VIEWER: ['workspace.view'],
    });
    expect(sorted(SEES_RESTRICTED_WORKSPACES)).toEqual(['admin', 'owner']);
  });

  it("the fixture's custom role lies strictly between member and admin, within what roles may hold", () => {
    const holds = (role: string) => new Set(permissionsOfRole(role));
    expect(CUSTOM_ROLE.permissions.filter((p) => !ROLE_ASSIGNABLE_PERMISSIONS.includes(p))).toEqual([]);
    expect(CUSTOM_ROLE.permissions.filter((p) => !holds('admin').has(p))).toEqual([]);
    expect(CUSTOM_ROLE.permissions.length).toBeLessThan(holds('admin').size);
    expect([...holds('member')].filter((p) => !CUSTOM_ROLE.permissions.includes(p))).toEqual([]);
    expect(CUSTOM_ROLE.permissions.length).toBeGreaterThan(holds('member').size);
  });

  it('every guarded mutation needs the permission the spec names; Organization and Workspace fields likewise', () => {
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
      secrets: 'org.secrets.manage',
      apiKeys: 'org.api_keys.manage',
      notificationDefaults: 'org.settings.view',
    });
    expect(FIELD_GUARDS.Workspace).toEqual({ '*': 'workspace.view', members: 'workspace.members.manage', secrets: 'org.secrets.manage' });
  });

  it('the served schema (introspection) has a guard for every mutation and a matrix row for every scoped one', async () => {
    const data = ok(await app.gql(`{ __schema { mutationType { fields { name } } } }`, {}, { as: fx.emails.owner }));
    const served: string[] = data.__schema.mutationType.fields.map((f: { name: string }) => f.name);
    expect(served.filter((name) => !(name in OPERATION_GUARDS.Mutation))).toEqual([]);
    const scoped = served.filter((name) => SCOPED_KINDS.includes(OPERATION_GUARDS.Mutation[name]!.kind)).sort();
    expect([...new Set(ROWS.map((r) => r.name))].sort()).toEqual(scoped);
    expect(scoped.filter((name) => !CASES[name])).toEqual([]);
    // The actors cover every system role and every workspace role of the data, and a custom role.
    expect(ROLE_KEYS.filter((key) => !ACTOR_DEFS.some((a) => a.orgRole === key && a.grant === null))).toEqual([]);
    expect(ACTOR_DEFS.filter((a) => a.orgRole === CUSTOM_ROLE.key)).toHaveLength(1);
    expect(sorted(ACTOR_DEFS.flatMap((a) => (a.grant ? [a.grant] : [])))).toEqual(sorted(WORKSPACE_ROLE_KEYS));
  });

  it('the generated expectations are not trivial: every outcome occurs, and the workspace role and the visibility change answers', () => {
    const all = [...ROWS, ...RESTRICTED_ROWS];
    expect(new Set(all.map((r) => r.expected))).toEqual(new Set(['HOLDER', 'FORBIDDEN', 'NOT_FOUND', 'UNAUTHENTICATED']));
    const outcome = (rows: typeof ROWS, name: string, actor: string) => rows.find((r) => r.name === name && r.actor === actor)!.expected;
    expect(outcome(ROWS, 'destroyEnvironment', 'viewer')).toBe('FORBIDDEN');
    expect(outcome(ROWS, 'destroyEnvironment', 'WORKSPACE_ADMIN')).toBe('HOLDER');
    expect(outcome(RESTRICTED_ROWS, 'createEnvironment', 'member')).toBe('NOT_FOUND');
    expect(outcome(RESTRICTED_ROWS, 'createEnvironment', 'WORKSPACE_MEMBER')).toBe('HOLDER');
    expect(outcome(RESTRICTED_ROWS, 'destroyEnvironment', 'custom')).toBe('NOT_FOUND');
    expect(outcome(ROWS, 'destroyEnvironment', 'custom')).toBe('HOLDER');
  });
});

async function runRow({ name, actor, expected }: { name: string; actor: Actor; expected: string }): Promise<void> {
  const c = CASES[name];
  if (!c) throw new Error(`no variables for ${name}: add it to CASES`);
  const result = await gqlAs(actor, c.document, c.variables(fx));
  if (expected !== 'HOLDER') {
    expect(codes(result)).toEqual([expected]);
    return;
  }
  expect(codes(result)).toEqual(c.holder);
  if (c.extensions) expect(result.errors![0]!.extensions).toMatchObject(c.extensions);
}

/** Queries a member may make of the default workspace; what each actor gets is computed from its effective permissions. */
const WORKSPACE_QUERY = `query($ws: ID!, $env: ID!) {
  workspace(id: $ws) { id viewerPermissions members { role } }
  environment(id: $env) { id }
}`;
/** Asked apart: its error nulls the non-null `me`, and with it the whole answer. */
const ME_PERMISSIONS = `query($org: ID!, $ws: ID!) { me { permissions(organizationId: $org, workspaceId: $ws) } }`;

function checkWorkspaceQueries(actor: Actor, visibility: Visibility, result: GqlResult, mine: GqlResult): void {
  const def = actorDef(actor);
  const errors = [...(result.errors ?? []), ...(mine.errors ?? [])].map((e) => ({ path: (e.path ?? []).join('.'), code: e.extensions?.code }));
  const byPath = (a: { path: string }, b: { path: string }) => a.path.localeCompare(b.path);
  if (def.anonymous) {
    expect(sorted(new Set(errors.map((e) => String(e.code))))).toEqual(['UNAUTHENTICATED']);
    return;
  }
  const held = workspacePermissions(actor, visibility);
  if (!held.has('workspace.view')) {
    // Not visible (a non-member, or a RESTRICTED workspace without a grant): exactly like an id that does not exist.
    expect(errors.sort(byPath)).toEqual(
      [
        { path: 'workspace', code: 'NOT_FOUND' },
        { path: 'environment', code: 'NOT_FOUND' },
        { path: 'me.permissions', code: 'NOT_FOUND' },
      ].sort(byPath),
    );
    expect(result.data?.workspace ?? null).toBeNull();
    expect(result.data?.environment ?? null).toBeNull();
    return;
  }
  const mayListMembers = held.has(FIELD_GUARDS.Workspace.members!);
  expect(errors).toEqual(mayListMembers ? [] : [{ path: 'workspace.members', code: 'FORBIDDEN' }]);
  expect(result.data!.workspace.id).toBe(fx.workspaceId);
  expect(result.data!.workspace.viewerPermissions).toEqual(sorted(held));
  expect(result.data!.workspace.members === null).toBe(!mayListMembers);
  expect(result.data!.environment).toEqual({ id: fx.environmentId });
  expect(mine.data!.me.permissions).toEqual(sorted(held));
}

describe.each([
  ['ORGANIZATION', ROWS],
  ['RESTRICTED', RESTRICTED_ROWS],
] as const)('with the default workspace %s', (visibility, rows) => {
  beforeAll(async () => {
    if (visibility === 'RESTRICTED') await restrictDefaultWorkspace();
  });

  describe('role × mutation matrix', () => {
    test.each(rows)('$name as $actor → $label', runRow);
  });

  describe('workspace, environment and me.permissions(organizationId, workspaceId)', () => {
    test.each(ACTORS)('as %s: visible, readable and answered exactly as the effective permissions say', async (actor) => {
      const result = await gqlAs(actor, WORKSPACE_QUERY, { ws: fx.workspaceId, env: fx.environmentId });
      const mine = await gqlAs(actor, ME_PERMISSIONS, { org: fx.orgId, ws: fx.workspaceId });
      checkWorkspaceQueries(actor, visibility, result, mine);
      if (actorDef(actor).orgRole === null) return;
      // The organization's list of workspaces shows it exactly when it is visible.
      const list = ok(await gqlAs(actor, `query($id: ID!) { organization(id: $id) { workspaces(first: 10) { totalCount nodes { id } } } }`, { id: fx.orgId }));
      const visible = workspacePermissions(actor, visibility).has('workspace.view');
      expect(list.organization.workspaces.nodes.map((n: { id: string }) => n.id)).toEqual(visible ? [fx.workspaceId] : []);
      expect(list.organization.workspaces.totalCount).toBe(visible ? 1 : 0);
    });
  });
});

/**
 * The mutations guarded only by a signed-in caller (the service decides the rest): anonymous is
 * UNAUTHENTICATED, every signed-in actor gets the same answer, whatever its roles. The variables
 * name nothing of theirs (a random organization, an unknown token) or are bad input: nothing changes.
 */
const SIGNED_IN_CASES: Record<string, { document: string; variables: Record<string, unknown>; signedIn: string[]; extensions?: Record<string, unknown> }> = {
  createOrganization: {
    document: `mutation { createOrganization(input: { name: "" }) { id } }`,
    variables: {},
    signedIn: ['BAD_USER_INPUT'],
    extensions: { field: 'name' },
  },
  leaveOrganization: {
    document: `mutation($org: ID!) { leaveOrganization(organizationId: $org) }`,
    variables: { org: randomUUID() },
    signedIn: ['NOT_FOUND'],
  },
  acceptInvitation: {
    document: `mutation($token: String!) { acceptInvitation(token: $token) { id } }`,
    variables: { token: randomUUID().replace(/-/g, '').repeat(2) },
    signedIn: ['NOT_FOUND'],
  },
  declineInvitation: {
    document: `mutation($token: String!) { declineInvitation(token: $token) { id } }`,
    variables: { token: randomUUID().replace(/-/g, '').repeat(2) },
    signedIn: ['NOT_FOUND'],
  },
  // Someone else's (here: nobody's) id is ignored: nothing marked.
  markNotificationsRead: {
    document: `mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) }`,
    variables: { ids: [randomUUID()] },
    signedIn: [],
  },
};
const SIGNED_IN = Object.entries(OPERATION_GUARDS.Mutation).filter(([name, guard]) => guard.kind === 'authenticated' && REGISTERED.has(name)).map(([name]) => name);

describe('mutations open to any signed-in caller', () => {
  it('are exactly those of the data', () => {
    expect(sorted(SIGNED_IN)).toEqual(sorted(Object.keys(SIGNED_IN_CASES)));
  });

  test.each(SIGNED_IN.flatMap((name) => ACTORS.map((actor) => ({ name, actor }))))('$name as $actor', async ({ name, actor }) => {
    const c = SIGNED_IN_CASES[name]!;
    const result = await gqlAs(actor, c.document, c.variables);
    if (actorDef(actor).anonymous) {
      expect(codes(result)).toEqual(['UNAUTHENTICATED']);
      return;
    }
    expect(codes(result)).toEqual(c.signedIn);
    if (c.extensions) expect(result.errors![0]!.extensions).toMatchObject(c.extensions);
  });
});

describe('after both passes', () => {
  it('left the organization as it was, apart from the audited successful calls', async () => {
    const audits = [...ROWS, ...RESTRICTED_ROWS].filter((r) => r.expected === 'HOLDER' && CASES[r.name]?.audit).map((r) => CASES[r.name]!.audit!);
    const data = ok(await app.gql(
      `query($id: ID!) { organization(id: $id) { name slug workspaceCount environmentCount members { totalCount } roles { key } auditEvents(first: 100) { nodes { action } } } }`,
      { id: fx.orgId },
      { as: fx.emails.owner },
    ));
    expect(data.organization).toMatchObject({ name: 'Matrix Org', workspaceCount: 1, environmentCount: 0, members: { totalCount: MEMBER_ACTORS.length + 1 } });
    expect(sorted(data.organization.roles.map((r: { key: string }) => r.key))).toEqual(sorted([...ROLE_KEYS, CUSTOM_ROLE.key]));
    expect(data.organization.auditEvents.nodes.map((n: { action: string }) => n.action).sort()).toEqual([...fx.fixtureAudits, ...audits].sort());
  });
});

describe('organization query and its guarded fields', () => {
  const SELECTIONS = ORGANIZATION_FIELD_SELECTIONS;
  const FIELDS = Object.keys(FIELD_GUARDS.Organization).filter((f) => f !== '*');

  test.each(ACTORS)('as %s: NOT_FOUND outside, FORBIDDEN without org.view, and a guarded field null with FORBIDDEN exactly when the role lacks it', async (actor) => {
    const missing = FIELDS.filter((f) => !SELECTIONS[f]);
    expect(missing).toEqual([]);
    const query = `query($id: ID!) { organization(id: $id) { id name ${FIELDS.map((f) => SELECTIONS[f]).join(' ')} } }`;
    const result = await gqlAs(actor, query, { id: fx.orgId });
    const def = actorDef(actor);
    if (def.anonymous || def.orgRole === null) {
      expect(codes(result)).toEqual([def.anonymous ? 'UNAUTHENTICATED' : 'NOT_FOUND']);
      expect(result.data?.organization ?? null).toBeNull();
      return;
    }
    const held = orgPermissions(actor);
    if (!held.has(FIELD_GUARDS.Organization['*']!)) {
      expect(codes(result)).toEqual(['FORBIDDEN']);
      return;
    }
    const forbidden = FIELDS.filter((f) => !held.has(FIELD_GUARDS.Organization[f]!));
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

describe('viewerPermissions and me.permissions(organizationId)', () => {
  test.each(ACTORS)('as %s: exactly the sorted permissions of the organization role (custom ones from their row; a workspace role adds nothing here)', async (actor) => {
    const result = await gqlAs(actor, `query($id: ID!) { organization(id: $id) { viewerPermissions } me { permissions(organizationId: $id) } }`, { id: fx.orgId });
    const def = actorDef(actor);
    if (def.anonymous) {
      expect(sorted(new Set(codes(result)))).toEqual(['UNAUTHENTICATED']);
      return;
    }
    if (def.orgRole === null) {
      expect(codes(result).sort()).toEqual(['NOT_FOUND', 'NOT_FOUND']);
      return;
    }
    const data = ok(result);
    const expected = sorted(orgPermissions(actor));
    expect(data.organization.viewerPermissions).toEqual(expected);
    expect(data.me.permissions).toEqual(expected);
  });
});
