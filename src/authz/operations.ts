import type { Permission } from './permissions';

/**
 * Which permission each operation needs, and where the scope comes from: data, from which the
 * shield rules and the role × operation tests are generated. An operation missing here is denied.
 */
export type Guard =
  | { kind: 'public' }
  | { kind: 'authenticated' }
  | { kind: 'organization' | 'workspace' | 'environment' | 'role' | 'invitation' | 'apiKey'; arg: string; permission: Permission };

const authenticated: Guard = { kind: 'authenticated' };
const org = (arg: string, permission: Permission): Guard => ({ kind: 'organization', arg, permission });
const ws = (arg: string, permission: Permission): Guard => ({ kind: 'workspace', arg, permission });
const env = (arg: string, permission: Permission): Guard => ({ kind: 'environment', arg, permission });
const role = (arg: string, permission: Permission): Guard => ({ kind: 'role', arg, permission });
/** Scoped by an invitation id: its organization's permission. */
const invitation = (arg: string, permission: Permission): Guard => ({ kind: 'invitation', arg, permission });
/** Scoped by an API key id: its organization's permission. */
const apiKey = (arg: string, permission: Permission): Guard => ({ kind: 'apiKey', arg, permission });

export const OPERATION_GUARDS: { Query: Record<string, Guard>; Mutation: Record<string, Guard> } = {
  Query: {
    me: authenticated,
    organization: authenticated,
    organizations: authenticated,
    workspace: authenticated,
    environment: authenticated,
    permissionCatalog: authenticated,
    // The catalogue is the same for every organization: any signed-in user may read it.
    plans: authenticated,
    _entities: authenticated,
    _service: { kind: 'public' },
    // A preview by token needs no login (SPEC §2): what it shows is the lookup's narrow answer.
    invitation: { kind: 'public' },
    auditEvents: org('organizationId', 'org.audit.view'),
    // Machine-only (SPEC §4): no role holds secrets.read, so a user is FORBIDDEN; a key needs it (and to see the workspace).
    resolveSecrets: ws('workspaceId', 'secrets.read'),
  },
  Mutation: {
    createOrganization: authenticated,
    updateOrganization: org('id', 'org.settings.update'),
    changeOrganizationSlug: org('id', 'org.settings.update'),
    // Owner only (the service checks the role under the organization lock): org.delete alone is not enough.
    deleteOrganization: org('id', 'org.delete'),
    restoreOrganization: org('id', 'org.delete'),
    createWorkspace: org('organizationId', 'workspace.create'),
    updateWorkspace: ws('id', 'workspace.update'),
    deleteWorkspace: ws('id', 'workspace.delete'),
    setWorkspaceMemberRole: ws('workspaceId', 'workspace.members.manage'),
    createEnvironment: ws('workspaceId', 'environment.create'),
    updateEnvironment: env('id', 'environment.update'),
    destroyEnvironment: env('id', 'environment.destroy'),
    updateMemberRole: org('organizationId', 'org.members.update_role'),
    removeMember: org('organizationId', 'org.members.remove'),
    // Any member may leave whatever their role; the service answers NOT_FOUND for an organization not theirs.
    leaveOrganization: authenticated,
    transferOwnership: org('organizationId', 'org.transfer'),
    createRole: org('organizationId', 'org.roles.manage'),
    updateRole: role('id', 'org.roles.manage'),
    deleteRole: role('id', 'org.roles.manage'),
    setFeatureFlag: org('organizationId', 'org.features.manage'),
    setSecret: org('organizationId', 'org.secrets.manage'),
    deleteSecret: org('organizationId', 'org.secrets.manage'),
    changePlan: org('organizationId', 'org.billing.manage'),
    cancelSubscription: org('organizationId', 'org.billing.manage'),
    resumeSubscription: org('organizationId', 'org.billing.manage'),
    inviteMember: org('organizationId', 'org.members.invite'),
    resendInvitation: invitation('id', 'org.members.invite'),
    revokeInvitation: invitation('id', 'org.members.invite'),
    // The invitee is not a member yet: the token and their verified email decide (in the service).
    acceptInvitation: authenticated,
    declineInvitation: authenticated,
    createApiKey: org('organizationId', 'org.api_keys.manage'),
    revokeApiKey: apiKey('id', 'org.api_keys.manage'),
    // The key itself is the credential (SPEC §2): no bearer needed.
    exchangeApiKey: { kind: 'public' },
    setOrganizationNotificationDefault: org('organizationId', 'org.settings.update'),
    // Every member chooses their own channels (org.view: what any role of the organization holds).
    setNotificationPreference: org('organizationId', 'org.view'),
    setNotificationDigest: org('organizationId', 'org.view'),
    // For machines (SPEC §4): no role holds notifications.publish, so a user token is FORBIDDEN.
    publishNotification: org('organizationId', 'notifications.publish'),
    // The viewer's own inbox across organizations: others' ids are ignored (in the service and by RLS).
    markNotificationsRead: authenticated,
  },
};

/**
 * Operations open to any signed-in person but not to API keys (SPEC §2: a key acts only inside its
 * organization): a key is FORBIDDEN there. Every other `authenticated` operation accepts a key,
 * which then sees only its own organization.
 */
export const USER_ONLY_OPERATIONS: ReadonlySet<string> = new Set(['me', 'createOrganization', 'leaveOrganization', 'acceptInvitation', 'declineInvitation', 'markNotificationsRead']);

/**
 * Organization-scoped mutations still allowed while the organization is read-only (subscription
 * SUSPENDED or EXPIRED, SPEC §5): billing, deletion and member removal. Every other mutation whose
 * guard resolves an organization answers ORGANIZATION_INACTIVE there (see RequestContext.mutate).
 */
export const ALLOWED_WHILE_INACTIVE: ReadonlySet<string> = new Set([
  'changePlan',
  'cancelSubscription',
  'resumeSubscription',
  'deleteOrganization',
  'restoreOrganization',
  'removeMember',
  'leaveOrganization',
  // A member's own notification choices are not a change of the organization.
  'setNotificationPreference',
  'setNotificationDigest',
]);

/**
 * The only mutation of a soft-deleted organization (SPEC §5): until it is restored or purged, every
 * other mutation scoped to it is ORGANIZATION_INACTIVE (status DELETED), the allow-list above included.
 */
export const ALLOWED_WHEN_DELETED: ReadonlySet<string> = new Set(['restoreOrganization']);

/**
 * Field-level permissions on the tenant types (SPEC §4): `*` is what every other field of the
 * type needs. Without it the field is null with FORBIDDEN at its path; siblings still resolve.
 */
export const FIELD_GUARDS: Record<'Organization' | 'Workspace' | 'Environment', Record<string, Permission>> = {
  Organization: {
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
  },
  Workspace: { '*': 'workspace.view', members: 'workspace.members.manage', secrets: 'org.secrets.manage' },
  Environment: { '*': 'workspace.view' },
};

/**
 * What seeing a tenant object at all needs (the `*` of its fields): checked once per object where
 * it is reached (src/authz/access.ts), so that its plain fields need no rule of their own.
 */
export const VIEW_PERMISSION = {
  Organization: FIELD_GUARDS.Organization['*']!,
  Workspace: FIELD_GUARDS.Workspace['*']!,
  Environment: FIELD_GUARDS.Environment['*']!,
} as const;

/** Types whose fields are open once their parent was reachable (the parent's rule decided). */
export const OPEN_TYPES = [
  'Viewer',
  'User',
  'Membership',
  'Role',
  'Permission',
  'PageInfo',
  'OrganizationSettings',
  'SecuritySettings',
  'Branding',
  'Banner',
  'EnvironmentResources',
  'WorkspaceMember',
  'AuditEvent',
  'AuditActor',
  'Plan',
  'PlanLimits',
  'FeatureFlag',
  'DeletionImpact',
  // Reached through Organization.subscription (org.billing.view), the billing mutations or a checked federation reference.
  'Subscription',
  '_Service',
  'OrganizationConnection',
  'OrganizationEdge',
  'WorkspaceConnection',
  'WorkspaceEdge',
  'MembershipConnection',
  'MembershipEdge',
  'AuditEventConnection',
  'AuditEventEdge',
  'Invitation',
  'InvitationTicket',
  'InvitationConnection',
  'InvitationEdge',
  'Quota',
  'QuotaUsage',
  // Reached through Organization/Workspace.secrets (org.secrets.manage) or setSecret.
  'SecretMetadata',
  // Reached through Organization.apiKeys (org.api_keys.manage), createApiKey/revokeApiKey or exchangeApiKey (the key itself).
  'ApiKey',
  'CreatedApiKey',
  'AccessToken',
  // Reached only through resolveSecrets (secrets.read).
  'ResolvedSecret',
  // Reached through the viewer (their own inbox and settings) or the notification mutations.
  'Notification',
  'NotificationConnection',
  'NotificationEdge',
  'NotificationPreference',
  'NotificationSettings',
];
