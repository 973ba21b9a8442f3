/**
 * The permission matrix (SPEC §4) as data: the catalog, the system organization roles and the
 * workspace roles. Shield rules, `viewerPermissions` and the role × operation tests are all
 * derived from this one module.
 */

export const PERMISSION_CATALOG = [
  { code: 'org.view', description: 'See the organization, its workspaces list, plans, quota and features' },
  { code: 'org.settings.view', description: "See the organization's settings, security settings and branding" },
  { code: 'org.settings.update', description: 'Update the organization and change its slug' },
  { code: 'org.delete', description: 'Delete and restore the organization' },
  { code: 'org.transfer', description: 'Transfer ownership of the organization' },
  { code: 'org.members.list', description: 'List members and roles' },
  { code: 'org.members.invite', description: 'Invite members, resend and revoke invitations, list invitations' },
  { code: 'org.members.remove', description: 'Remove members' },
  { code: 'org.members.update_role', description: "Change a member's role" },
  { code: 'org.roles.manage', description: 'Create, update and delete custom roles' },
  { code: 'org.billing.view', description: 'See the subscription' },
  { code: 'org.billing.manage', description: 'Change plan, cancel and resume the subscription' },
  { code: 'org.features.manage', description: 'Set feature flag overrides' },
  { code: 'org.audit.view', description: 'Read the audit trail' },
  { code: 'org.audit.export', description: 'Export the audit trail' },
  { code: 'org.api_keys.manage', description: 'List, create and revoke API keys' },
  { code: 'org.secrets.manage', description: 'List, set and delete secrets (metadata only, never values)' },
  { code: 'secrets.read', description: 'Resolve secret values (API keys only)' },
  { code: 'notifications.publish', description: 'Publish notifications to members (API keys only)' },
  { code: 'workspace.create', description: 'Create workspaces' },
  { code: 'workspace.view', description: 'See a workspace and its environments' },
  { code: 'workspace.update', description: 'Update a workspace' },
  { code: 'workspace.delete', description: 'Delete a workspace' },
  { code: 'workspace.members.manage', description: "Grant and remove workspace roles, list a workspace's members" },
  { code: 'environment.create', description: 'Create environments' },
  { code: 'environment.update', description: 'Update environments' },
  { code: 'environment.destroy', description: 'Destroy environments' },
] as const;

export type Permission = (typeof PERMISSION_CATALOG)[number]['code'];
export const ALL_PERMISSIONS: readonly Permission[] = PERMISSION_CATALOG.map((p) => p.code);
export const isPermission = (code: string): code is Permission => (ALL_PERMISSIONS as readonly string[]).includes(code);

/** For machines only: API keys get them by scope; no role holds them, custom roles cannot include them. */
export const MACHINE_ONLY_PERMISSIONS: readonly Permission[] = ['secrets.read', 'notifications.publish'];
export const ROLE_ASSIGNABLE_PERMISSIONS = ALL_PERMISSIONS.filter((p) => !MACHINE_ONLY_PERMISSIONS.includes(p));

export type SystemRoleKey = 'owner' | 'admin' | 'member' | 'viewer';

export interface SystemRoleDefinition {
  key: SystemRoleKey;
  name: string;
  description: string;
  permissions: readonly Permission[];
}

const without = (...excluded: Permission[]) => ROLE_ASSIGNABLE_PERMISSIONS.filter((p) => !excluded.includes(p));

export const SYSTEM_ROLES: readonly SystemRoleDefinition[] = [
  { key: 'owner', name: 'Owner', description: 'Full control, including deletion, ownership transfer and billing', permissions: ROLE_ASSIGNABLE_PERMISSIONS },
  {
    key: 'admin',
    name: 'Admin',
    description: 'Manages the organization, except deletion, ownership transfer and billing changes',
    permissions: without('org.delete', 'org.transfer', 'org.billing.manage'),
  },
  {
    key: 'member',
    name: 'Member',
    description: 'Works in workspaces: sees them and creates and updates environments',
    permissions: ['org.view', 'org.members.list', 'workspace.view', 'environment.create', 'environment.update'],
  },
  { key: 'viewer', name: 'Viewer', description: 'Read-only access', permissions: ['org.view', 'org.members.list', 'workspace.view'] },
];

export const SYSTEM_ROLE_KEYS: readonly string[] = SYSTEM_ROLES.map((r) => r.key);
export const systemRole = (key: string): SystemRoleDefinition | undefined => SYSTEM_ROLES.find((r) => r.key === key);

/** Each system role's permissions as one shared, read-only set (asked for every organization of every request). */
const SYSTEM_PERMISSION_SETS: ReadonlyMap<string, ReadonlySet<Permission>> = new Map(SYSTEM_ROLES.map((r) => [r.key, new Set(r.permissions)]));
export const systemPermissions = (key: string): ReadonlySet<Permission> | undefined => SYSTEM_PERMISSION_SETS.get(key);

/** Permissions a workspace role adds inside its workspace. */
export const WORKSPACE_ROLE_PERMISSIONS: Record<'WORKSPACE_ADMIN' | 'WORKSPACE_MEMBER' | 'WORKSPACE_VIEWER', readonly Permission[]> = {
  WORKSPACE_ADMIN: ['workspace.view', 'workspace.update', 'workspace.members.manage', 'environment.create', 'environment.update', 'environment.destroy'],
  WORKSPACE_MEMBER: ['workspace.view', 'environment.create', 'environment.update'],
  WORKSPACE_VIEWER: ['workspace.view'],
};

/** Roles that see every workspace, RESTRICTED ones included. */
export const SEES_RESTRICTED_WORKSPACES: readonly string[] = ['owner', 'admin'];

/** Permissions that apply inside a workspace (the rest are organization-wide). */
export const WORKSPACE_SCOPED_PERMISSIONS: readonly Permission[] = ALL_PERMISSIONS.filter(
  (p) => p.startsWith('workspace.') || p.startsWith('environment.'),
).filter((p) => p !== 'workspace.create');
