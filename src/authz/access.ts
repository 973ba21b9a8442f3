import {
  BadUserInputError,
  FeatureDisabledError,
  ForbiddenError,
  IpNotAllowedError,
  MfaRequiredError,
  NotFoundError,
  SessionExpiredError,
  UnauthenticatedError,
} from '../common/errors';
import { isUuid } from '../common/validation';
import type { ApiKey } from '../modules/api-key/api-key.types';
import type { Environment } from '../modules/environment/environment.entity';
import type { Invitation } from '../modules/invitation/invitation.entity';
import type { Organization } from '../modules/organization/organization.entity';
import type { Role } from '../modules/membership/role.entity';
import { DEFAULT_SECURITY, OrganizationStatus } from '../modules/organization/organization.types';
import { ANONYMOUS, type ApiKeyIdentity, type Principal, type Viewer } from '../auth/principal';
import type { Session } from '../database/tenant-transaction';
import type { Workspace, WorkspaceRole } from '../modules/workspace/workspace.entity';
import type { WorkspaceVisibilityMode } from '../modules/workspace/workspace.loaders';
import type { Loaders } from '../context';
import { VIEW_PERMISSION } from './operations';
import { IP_ALLOWLIST_FEATURE, securityViolation } from './security-settings';
import { isPermission, MACHINE_ONLY_PERMISSIONS, type Permission, SEES_RESTRICTED_WORKSPACES, systemPermissions, WORKSPACE_ROLE_PERMISSIONS } from './permissions';

const NONE: ReadonlySet<Permission> = new Set();
/** Every permission a workspace grant can give (WORKSPACE_ROLE_PERMISSIONS, all roles). */
const GRANTABLE: readonly Permission[] = [...new Set(Object.values(WORKSPACE_ROLE_PERMISSIONS).flat())];

/** Who is asking, from where, and whether a mutation is running (its security check waits for its input checks, in ctx.mutate). */
export interface SecurityCaller {
  principal: Principal;
  clientIp: string | null;
  inMutation: () => boolean;
}

/**
 * What the principal may see and do, decided from the database on every request (membership
 * and role are never taken from the token). Lookups here fail closed: anything the principal
 * may not see is NOT_FOUND, exactly like an id that does not exist or is malformed.
 */
export class Access {
  /** Keyed by organization and role key: a role that changes in the request is a new key, never a stale answer. */
  private readonly permissionCache = new Map<string, Promise<ReadonlySet<Permission>>>();
  /** Effective permissions per workspace, computed once per request (every field of a workspace and its environments asks). */
  private readonly workspaceCache = new Map<string, Promise<ReadonlySet<Permission>>>();
  /** Enabled feature keys per organization, read once per request (plan ∪ overrides, from the database). */
  private readonly featureCache = new Map<string, Promise<ReadonlySet<string>>>();
  /** The security-settings verdict per organization, decided once per request. */
  private readonly insideCache = new Map<string, Promise<void>>();
  /** An API key's permissions: exactly its scopes, in its one organization (computed once). */
  private apiKeyPermissions?: { organizationId: string; permissions: ReadonlySet<Permission> };

  constructor(
    private readonly session: () => Promise<Session>,
    private readonly loaders: Loaders,
    /** The read-only check of an inactive organization, which precedes FEATURE_DISABLED (SPEC §6). */
    private readonly beforeFeature: () => Promise<void> = async () => undefined,
    /** Who is asking and from where, for the organization's security settings (SPEC §2). */
    private readonly caller: SecurityCaller = { principal: ANONYMOUS, clientIp: null, inMutation: () => false },
  ) {}

  /**
   * The one gate of an organization's security settings (SPEC §2): MFA_REQUIRED, SESSION_EXPIRED
   * or IP_NOT_ALLOWED for anything the principal does inside the organization. Called once the
   * principal is known to see the organization and hold the permission (SPEC §6: after NOT_FOUND,
   * FORBIDDEN and — for mutations, where RequestContext.assertWritable calls it — BAD_USER_INPUT),
   * by the lookups below (`organization`, `workspace`, `environment`, `role`, `invitation`) when
   * no mutation is running, the operation guards of queries, the permission rules of fields.
   */
  inside(organizationId: string): Promise<void> {
    let verdict = this.insideCache.get(organizationId);
    if (!verdict) {
      verdict = this.decideInside(organizationId);
      this.insideCache.set(organizationId, verdict);
    }
    return verdict;
  }

  /** Queries meet the security settings at the lookup; a mutation meets them in ctx.mutate, after validating its input (SPEC §6). */
  private async insideUnlessMutation(organizationId: string): Promise<void> {
    if (!this.caller.inMutation()) await this.inside(organizationId);
  }

  private async decideInside(organizationId: string): Promise<void> {
    const { principal, clientIp } = this.caller;
    if (principal.kind === 'system' || principal.kind === 'anonymous') return;
    const organization = await this.loaders.organizationById.load(organizationId);
    if (!organization) return;
    const settings = { ...DEFAULT_SECURITY, ...organization.security };
    const ipAllowlistEnabled =
      settings.ipAllowlist.length > 0 && (await this.loaders.featureFlagsByOrganization.load(organizationId)).some((f) => f.key === IP_ALLOWLIST_FEATURE && f.enabled);
    const violation = securityViolation({ principal, clientIp, settings, ipAllowlistEnabled, nowSeconds: Math.floor(Date.now() / 1000) });
    if (violation) throw violation;
  }

  /** The user behind the request: UNAUTHENTICATED without a principal, FORBIDDEN for an API key (it is not a person). */
  async requireViewer(): Promise<Viewer> {
    const { viewer, apiKey } = await this.session();
    if (apiKey) throw new ForbiddenError('API keys cannot do this: it needs a signed-in user');
    if (!viewer) throw new UnauthenticatedError();
    return viewer;
  }

  /** Someone authenticated: a user or an API key (UNAUTHENTICATED otherwise). */
  async requirePrincipal(): Promise<void> {
    // A verified user token is someone without asking the database: opening the session
    // provisions its user or fails, and that failure is the answer of the first read instead.
    // The transaction then opens with that read (RequestContext's loaders), in one round trip.
    if (this.caller.principal.kind === 'user') return;
    const { viewer, apiKey } = await this.session();
    if (!viewer && !apiKey) throw new UnauthenticatedError();
  }

  /** The API key of the request (null for anyone else). */
  async apiKey(): Promise<ApiKeyIdentity | null> {
    return (await this.session()).apiKey;
  }

  /** The user the request acts for, if any (an API key acts for no user): for `created_by` columns. */
  async actingUserId(): Promise<string | null> {
    return (await this.session()).viewer?.userId ?? null;
  }

  async roleIn(organizationId: string): Promise<string | null> {
    return (await this.session()).roles.get(organizationId) ?? null;
  }

  /**
   * Permissions of the viewer's organization role (system roles from the matrix, custom ones from
   * their row); for an API key, exactly its scopes inside its own organization and nothing elsewhere.
   */
  async orgPermissions(organizationId: string): Promise<ReadonlySet<Permission>> {
    const session = await this.session();
    if (session.apiKey) return this.keyPermissions(session.apiKey, organizationId);
    return this.permissionsOf(organizationId, session.roles.get(organizationId) ?? null);
  }

  private keyPermissions(key: ApiKeyIdentity, organizationId: string): ReadonlySet<Permission> {
    if (key.organizationId !== organizationId) return NONE;
    this.apiKeyPermissions ??= { organizationId: key.organizationId, permissions: new Set(key.scopes.filter(isPermission)) };
    return this.apiKeyPermissions.permissions;
  }

  /**
   * The scopes an API key may be given (SPEC §2, §4): by a user, the permissions they hold, plus
   * `secrets.read` when they hold `org.secrets.manage` and `notifications.publish` when they hold
   * `org.settings.update` (machine-only scopes no role holds); by a key, a subset of its own scopes.
   * FORBIDDEN for the first scope beyond that.
   */
  async assertMayGrantScopes(organizationId: string, scopes: Iterable<Permission>): Promise<void> {
    const own = await this.orgPermissions(organizationId);
    const key = await this.apiKey();
    const grantable = new Set<Permission>(own);
    if (!key) {
      if (own.has('org.secrets.manage')) grantable.add('secrets.read');
      if (own.has('org.settings.update')) grantable.add('notifications.publish');
    }
    for (const p of scopes) {
      if (!grantable.has(p)) {
        throw new ForbiddenError(MACHINE_ONLY_PERMISSIONS.includes(p) && !key ? `You cannot grant '${p}' without the permission it derives from` : `You cannot grant '${p}', which you do not hold`);
      }
    }
  }

  private permissionsOf(organizationId: string, key: string | null): ReadonlySet<Permission> | Promise<ReadonlySet<Permission>> {
    if (!key) return NONE;
    const system = systemPermissions(key);
    if (system) return system;
    const cacheKey = `${organizationId}:${key}`;
    let cached = this.permissionCache.get(cacheKey);
    if (!cached) {
      cached = this.rolePermissions(organizationId, key).then((granted) => granted ?? NONE);
      this.permissionCache.set(cacheKey, cached);
    }
    return cached;
  }

  /**
   * The escalation rule (SPEC §4): nobody creates, edits, assigns or invites with a role holding
   * a permission they do not hold themselves. `owner` is never granted this way (only by
   * transferring ownership); a key that names no role of the organization is bad input.
   */
  async assertMayGrantRole(organizationId: string, roleKey: string, field = 'roleKey'): Promise<void> {
    if (roleKey === 'owner') throw new BadUserInputError(field, 'The owner role is granted only by transferring ownership');
    const granted = await this.rolePermissions(organizationId, roleKey);
    if (!granted) throw new BadUserInputError(field, `Unknown role '${roleKey}'`);
    await this.assertMayGrant(organizationId, granted);
  }

  /** Every permission given is one the viewer holds in the organization (else FORBIDDEN). */
  async assertMayGrant(organizationId: string, permissions: Iterable<Permission>): Promise<void> {
    const own = await this.orgPermissions(organizationId);
    for (const p of permissions) if (!own.has(p)) throw new ForbiddenError(`You cannot grant '${p}', which you do not hold`);
  }

  /** The permissions a role key of the organization holds (system or custom), null when there is no such role. */
  async rolePermissions(organizationId: string, roleKey: string): Promise<ReadonlySet<Permission> | null> {
    const system = systemPermissions(roleKey);
    if (system) return system;
    const custom = (await this.loaders.rolesByOrganization.load(organizationId)).find((r) => r.key === roleKey);
    return custom ? new Set(custom.storedPermissions.filter(isPermission)) : null;
  }

  /** Forgets what was memoized (a mutation may have changed roles or flags). */
  reset(): void {
    this.permissionCache.clear();
    this.workspaceCache.clear();
    this.featureCache.clear();
    this.insideCache.clear();
    this.apiKeyPermissions = undefined;
  }

  /**
   * The one gate of plan features and flags (SPEC §5): FEATURE_DISABLED, naming the feature,
   * unless the organization's plan grants it or an override switches it on (an override wins
   * either way). Read from the database once per request: a toggle applies from the next request.
   * Callers check it after visibility, permission and input (SPEC §6 order), before state.
   */
  async requireFeature(organizationId: string, key: string): Promise<void> {
    await this.beforeFeature();
    let enabled = this.featureCache.get(organizationId);
    if (!enabled) {
      enabled = this.loaders.featureFlagsByOrganization.load(organizationId).then((flags) => new Set(flags.filter((f) => f.enabled).map((f) => f.key)));
      this.featureCache.set(organizationId, enabled);
    }
    if (!(await enabled).has(key)) throw new FeatureDisabledError(key);
  }

  /**
   * The viewer's organizations whose role grants seeing them (`org.view`), with its role in each:
   * what a list of organizations may show (the same check `organization()` makes for one).
   */
  async viewableOrganizations(): Promise<Map<string, string>> {
    // Asked before the session: a user's transaction opens with this read, in the same round trip.
    const refusing = this.loaders.organizationsThatMayRefuse.load();
    refusing.catch(() => undefined);
    const { roles, apiKey } = await this.session();
    const viewable = new Map<string, string>();
    for (const [id, key] of roles) {
      const granted = apiKey ? this.keyPermissions(apiKey, id) : this.permissionsOf(id, key);
      if ((granted instanceof Promise ? await granted : granted).has(VIEW_PERMISSION.Organization)) viewable.set(id, key);
    }
    // Only the organizations whose settings could refuse this token are decided (together, so they
    // and their flags are read in one batch); for the rest one light statement says they cannot.
    const mayRefuse = await refusing;
    const suspects = [...viewable.keys()].filter((id) => mayRefuse.has(id));
    const enterable = await Promise.all(suspects.map((id) => this.mayEnter(id)));
    for (const [i, id] of suspects.entries()) if (!enterable[i]) viewable.delete(id);
    return viewable;
  }

  /**
   * Whether the organization's security settings let this token in (SPEC §2). Lists of one's
   * organizations (`organizations`, `me.memberships`) leave out those it may not enter: an entry
   * would show what is inside (its workspaces, counts…), and an error on it would fail the whole
   * list. Asked by id, the organization answers MFA_REQUIRED, SESSION_EXPIRED or IP_NOT_ALLOWED.
   */
  async mayEnter(organizationId: string): Promise<boolean> {
    try {
      await this.inside(organizationId);
      return true;
    } catch (error) {
      if (error instanceof MfaRequiredError || error instanceof SessionExpiredError || error instanceof IpNotAllowedError) return false;
      throw error;
    }
  }

  /**
   * Which workspaces of an organization the viewer sees: `all` (owner, admin), `organization`
   * (its role holds workspace.view: ORGANIZATION ones plus granted ones), `grants` (granted only).
   */
  async workspaceVisibilityMode(organizationId: string): Promise<WorkspaceVisibilityMode> {
    const role = await this.roleIn(organizationId);
    if (role && SEES_RESTRICTED_WORKSPACES.includes(role)) return 'all';
    return (await this.orgPermissions(organizationId)).has('workspace.view') ? 'organization' : 'grants';
  }

  /** Members see their organization; once it is deleted only its owner still does (to restore it). */
  async visibleOrganization(id: unknown): Promise<Organization | null> {
    if (!isUuid(id)) return null;
    const role = await this.roleIn(id);
    if (!role) return null;
    const organization = await this.loaders.organizationById.load(id);
    if (!organization) return null;
    if (organization.status === OrganizationStatus.DELETED && role !== 'owner') return null;
    return organization;
  }

  /**
   * The organization, if the viewer may see it: NOT_FOUND when it is not one of theirs (or is
   * deleted and they are not its owner), FORBIDDEN when their role lacks what seeing it needs
   * (`org.view`, the `*` of its fields in the matrix) or the given permission.
   */
  async organization(id: unknown, permission?: Permission): Promise<Organization> {
    await this.requirePrincipal();
    const organization = await this.visibleOrganization(id);
    if (!organization) throw new NotFoundError('Organization');
    await this.assertOrg(organization.id, VIEW_PERMISSION.Organization);
    if (permission) await this.assertOrg(organization.id, permission);
    await this.insideUnlessMutation(organization.id);
    return organization;
  }

  async assertOrg(organizationId: string, permission: Permission): Promise<void> {
    if (!(await this.orgPermissions(organizationId)).has(permission)) throw new ForbiddenError();
  }

  /**
   * Effective permissions in a workspace: the organization role when the workspace is visible
   * through it (ORGANIZATION visibility, or owner/admin) ∪ the viewer's workspace role there.
   */
  workspacePermissions(workspace: Workspace): Promise<ReadonlySet<Permission>> {
    const key = `${workspace.organizationId}:${workspace.id}:${workspace.visibility}`;
    let cached = this.workspaceCache.get(key);
    if (!cached) {
      cached = this.computeWorkspacePermissions(workspace);
      this.workspaceCache.set(key, cached);
    }
    return cached;
  }

  private async computeWorkspacePermissions(workspace: Workspace): Promise<ReadonlySet<Permission>> {
    const role = await this.roleIn(workspace.organizationId);
    if (!role) return NONE;
    const organizationRoleApplies = workspace.visibility === 'ORGANIZATION' || SEES_RESTRICTED_WORKSPACES.includes(role);
    const orgPermissions = organizationRoleApplies ? await this.orgPermissions(workspace.organizationId) : NONE;
    // A grant adds nothing to an organization role that holds all a grant could give (owner, admin): not read.
    if (organizationRoleApplies && GRANTABLE.every((p) => orgPermissions.has(p))) return orgPermissions;
    const grant: WorkspaceRole | null = await this.loaders.viewerWorkspaceRole.load({ organizationId: workspace.organizationId, workspaceId: workspace.id });
    if (!grant) return orgPermissions;
    const result = new Set<Permission>(orgPermissions);
    for (const p of WORKSPACE_ROLE_PERMISSIONS[grant]) result.add(p);
    return result;
  }

  /** A workspace is visible when its organization is and the viewer holds workspace.view in it. */
  async visibleWorkspace(id: unknown): Promise<Workspace | null> {
    if (!isUuid(id)) return null;
    const workspace = await this.loaders.workspaceById.load(id);
    if (!workspace || !(await this.visibleOrganization(workspace.organizationId))) return null;
    return (await this.workspacePermissions(workspace)).has(VIEW_PERMISSION.Workspace) ? workspace : null;
  }

  async workspace(id: unknown, permission?: Permission): Promise<Workspace> {
    await this.requirePrincipal();
    const workspace = await this.visibleWorkspace(id);
    if (!workspace) throw new NotFoundError('Workspace');
    if (permission && !(await this.workspacePermissions(workspace)).has(permission)) throw new ForbiddenError();
    await this.insideUnlessMutation(workspace.organizationId);
    return workspace;
  }

  /** A role of an organization the viewer may see (NOT_FOUND like a random id otherwise), FORBIDDEN without the permission. */
  async role(id: unknown, permission?: Permission): Promise<Role> {
    await this.requirePrincipal();
    if (!isUuid(id)) throw new NotFoundError('Role');
    const role = await this.loaders.roleById.load(id);
    if (!role || !(await this.visibleOrganization(role.organizationId))) throw new NotFoundError('Role');
    await this.assertOrg(role.organizationId, VIEW_PERMISSION.Organization);
    if (permission) await this.assertOrg(role.organizationId, permission);
    await this.insideUnlessMutation(role.organizationId);
    return role;
  }

  /**
   * An invitation seen through its organization (by those who manage invitations there): NOT_FOUND
   * when its organization is not visible, exactly like an id that does not exist.
   */
  async invitation(id: unknown, permission?: Permission): Promise<Invitation> {
    await this.requirePrincipal();
    const invitation = isUuid(id) ? await this.loaders.invitationById.load(id) : null;
    if (!invitation || !(await this.visibleOrganization(invitation.organizationId))) throw new NotFoundError('Invitation');
    await this.assertOrg(invitation.organizationId, VIEW_PERMISSION.Organization);
    if (permission) await this.assertOrg(invitation.organizationId, permission);
    await this.insideUnlessMutation(invitation.organizationId);
    return invitation;
  }

  /** An API key seen through its organization (NOT_FOUND like a random id otherwise), FORBIDDEN without the permission. */
  async apiKeyById(id: unknown, permission?: Permission): Promise<ApiKey> {
    await this.requirePrincipal();
    const apiKey = isUuid(id) ? await this.loaders.apiKeyById.load(id) : null;
    if (!apiKey || !(await this.visibleOrganization(apiKey.organizationId))) throw new NotFoundError('ApiKey');
    await this.assertOrg(apiKey.organizationId, VIEW_PERMISSION.Organization);
    if (permission) await this.assertOrg(apiKey.organizationId, permission);
    await this.insideUnlessMutation(apiKey.organizationId);
    return apiKey;
  }

  async visibleEnvironment(id: unknown): Promise<{ environment: Environment; workspace: Workspace } | null> {
    if (!isUuid(id)) return null;
    const environment = await this.loaders.environmentById.load(id);
    if (!environment) return null;
    const workspace = await this.visibleWorkspace(environment.workspaceId);
    return workspace && (await this.workspacePermissions(workspace)).has(VIEW_PERMISSION.Environment) ? { environment, workspace } : null;
  }

  async environment(id: unknown, permission?: Permission): Promise<{ environment: Environment; workspace: Workspace }> {
    await this.requirePrincipal();
    const found = await this.visibleEnvironment(id);
    if (!found) throw new NotFoundError('Environment');
    if (permission && !(await this.workspacePermissions(found.workspace)).has(permission)) throw new ForbiddenError();
    await this.insideUnlessMutation(found.workspace.organizationId);
    return found;
  }
}
