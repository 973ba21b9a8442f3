import { randomUUID } from 'node:crypto';
import { BadUserInputError, ForbiddenError, NotFoundError, plural, PreconditionFailedError, uniqueOrConflict } from '../../common/errors';
import { assertExplicitSlug, insertWithSlug } from '../../common/slug';
import { isUuid, optionalText, requiredName } from '../../common/validation';
import { WORKSPACE_ROLE_PERMISSIONS } from '../../authz/permissions';
import { hydrator } from '../../database/hydrate';
import type { RequestContext } from '../../context';
import { diffChanges, NO_CHANGES } from '../audit/audit.writer';
import { QuotaChecker } from '../quota/quota.checker';
import { QuotaResource } from '../quota/quota.types';
import { Workspace, WorkspaceRole, WorkspaceVisibility } from './workspace.entity';
import type { CreateWorkspaceInput, UpdateWorkspaceInput } from './workspace.inputs';

const conflictMessage = (slug: string) => `Workspace with slug '${slug}' already exists`;
const AUDITED_FIELDS = ['name', 'slug', 'description', 'visibility'] as const;
/** The plan feature RESTRICTED visibility needs (SPEC §4). */
const RESTRICTED_WORKSPACES = 'restricted_workspaces';

const auditView = (w: Workspace): Record<string, unknown> => ({
  name: w.name,
  slug: w.slug,
  description: w.description,
  visibility: w.visibility,
});

function visibility(value: WorkspaceVisibility | null | undefined, field: string): WorkspaceVisibility {
  if (!Object.values(WorkspaceVisibility).includes(value as WorkspaceVisibility)) {
    throw new BadUserInputError(field, `${field} must be one of ${Object.values(WorkspaceVisibility).join(', ')}`);
  }
  return value as WorkspaceVisibility;
}

/**
 * SPEC §4: nobody assigns a role holding permissions they do not hold themselves. `held` is the
 * caller's effective permissions in the workspace; removing a grant (role null) is always allowed.
 */
export function assertCanGrant(held: ReadonlySet<string>, role: WorkspaceRole | null): void {
  if (role === null) return;
  if (!WORKSPACE_ROLE_PERMISSIONS[role].every((permission) => held.has(permission))) {
    throw new ForbiddenError('You cannot grant a workspace role holding permissions you do not hold');
  }
}

/**
 * Workspace lifecycle and grants. Callers have passed the shield rules (the one permission
 * check); this checks what depends on state: grants beyond one's own, a visibility changed meanwhile.
 */
export class WorkspaceService {
  private readonly toWorkspace;

  constructor(private readonly ctx: RequestContext) {
    this.toWorkspace = hydrator(ctx.app.db.dataSource, Workspace);
  }

  /** Slug derived from the name when omitted (`-2`, `-3`… on collision); an explicit taken slug is CONFLICT. */
  async create(organizationId: string, input: CreateWorkspaceInput): Promise<Workspace> {
    const organization = await this.ctx.access.organization(organizationId);
    const actingUserId = await this.ctx.access.actingUserId();
    const name = requiredName(input.name);
    if (input.slug !== undefined && input.slug !== null) assertExplicitSlug(input.slug);
    const description = optionalText(input.description, 'description', 2000);
    // An explicit null is taken as "use the default", as GraphQL does for an omitted field.
    const chosenVisibility = visibility(input.visibility ?? WorkspaceVisibility.ORGANIZATION, 'visibility');
    // After input (SPEC §6 order), before any write.
    if (chosenVisibility === WorkspaceVisibility.RESTRICTED) await this.ctx.access.requireFeature(organization.id, RESTRICTED_WORKSPACES);

    return this.ctx.mutate(async () => {
      const query = this.ctx.tx.query;
      // The quota checker's organization lock is this mutation's first lock (README, "Quotas").
      await new QuotaChecker(this.ctx).admit(organization.id, { [QuotaResource.WORKSPACES]: 1 });
      const id = randomUUID();
      const { row } = await insertWithSlug({
        query,
        savepoint: (fn) => this.ctx.tx.savepoint(fn),
        scope: `workspaces.slug:${organization.id}`,
        explicit: input.slug,
        name,
        fallback: 'workspace',
        taken: async (candidates) =>
          (await query<{ s: string }>(`SELECT slug AS s FROM workspaces WHERE organization_id = $1 AND slug = ANY($2::text[])`, [organization.id, candidates])).map(
            (r) => r.s,
          ),
        insert: async (slug) =>
          (
            await query(
              `INSERT INTO workspaces (organization_id, id, name, slug, description, visibility, created_by)
               VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
              [organization.id, id, name, slug, description, chosenVisibility, actingUserId],
            )
          )[0]!,
        constraint: 'workspaces_slug_key',
        conflictMessage,
      });
      const workspace = this.toWorkspace(row);
      await this.ctx.audit.record({
        organizationId: organization.id,
        action: 'workspace.created',
        resourceType: 'workspace',
        resourceId: workspace.id,
        resourceName: workspace.name,
        workspaceId: workspace.id,
        metadata: { slug: workspace.slug, visibility: workspace.visibility },
      });
      return workspace;
    });
  }

  async update(id: string, input: UpdateWorkspaceInput): Promise<Workspace> {
    const visible = await this.ctx.access.workspace(id);
    // Input validation does not depend on the row; everything that does reads the locked row below.
    const patch: Partial<Pick<Workspace, 'name' | 'slug' | 'description' | 'visibility'>> = {};
    if (input.name !== undefined) patch.name = requiredName(input.name);
    if (input.slug !== undefined) {
      if (input.slug === null) throw new BadUserInputError('slug', 'slug cannot be null; omit it to leave it unchanged');
      assertExplicitSlug(input.slug);
      patch.slug = input.slug;
    }
    if (input.description !== undefined) patch.description = optionalText(input.description, 'description', 2000);
    if (input.visibility !== undefined) patch.visibility = visibility(input.visibility, 'visibility');

    return this.ctx.mutate(async () => {
      const query = this.ctx.tx.query;
      // Locked: a concurrent update of other fields waits, then builds on what this one wrote.
      const [locked] = await query(`SELECT * FROM workspaces WHERE organization_id = $1 AND id = $2 FOR UPDATE`, [visible.organizationId, id]);
      if (!locked) throw new NotFoundError('Workspace');
      const current = this.toWorkspace(locked);
      // The permission may rest on the visibility, which a concurrent update may just have changed.
      if (!(await this.ctx.access.workspacePermissions(current)).has('workspace.update')) throw new ForbiddenError();
      const next: Workspace = { ...current, ...patch };
      // Making a workspace RESTRICTED needs the feature; one that already is stays editable (the
      // locked row decides, not the first read: a concurrent update may have changed it meanwhile).
      if (next.visibility === WorkspaceVisibility.RESTRICTED && current.visibility !== WorkspaceVisibility.RESTRICTED) {
        await this.ctx.access.requireFeature(current.organizationId, RESTRICTED_WORKSPACES);
      }
      const changes = diffChanges(auditView(current), auditView(next), AUDITED_FIELDS);
      const [row] = await uniqueOrConflict(
        (fn) => this.ctx.tx.savepoint(fn),
        () =>
          query(
            `UPDATE workspaces SET name = $3, slug = $4, description = $5, visibility = $6,
               updated_at = CASE WHEN $7::boolean THEN now() ELSE updated_at END
             WHERE organization_id = $1 AND id = $2 RETURNING *`,
            [current.organizationId, id, next.name, next.slug, next.description, next.visibility, changes !== null],
          ),
        { constraint: 'workspaces_slug_key', message: conflictMessage(next.slug), field: 'slug' },
      );
      if (!row) throw new NotFoundError('Workspace');
      const updated = this.toWorkspace(row);
      await this.ctx.audit.record({
        organizationId: updated.organizationId,
        action: 'workspace.updated',
        resourceType: 'workspace',
        resourceId: id,
        resourceName: updated.name,
        workspaceId: id,
        changes: changes ?? NO_CHANGES,
      });
      return updated;
    });
  }

  /** Hard delete: grants (and destroyed environments) go with it through the foreign keys. */
  async delete(id: string): Promise<true> {
    const workspace = await this.ctx.access.workspace(id);
    if (workspace.isDefault) throw new PreconditionFailedError('DEFAULT_WORKSPACE', 'The default workspace cannot be deleted');
    await this.assertNoActiveEnvironments(workspace);

    return this.ctx.mutate(async () => {
      const query = this.ctx.tx.query;
      // Locking the row blocks environment inserts into it (their foreign-key check needs a
      // key-share lock), so the count below cannot be outrun by a concurrent createEnvironment.
      const [locked] = await query(`SELECT name, slug FROM workspaces WHERE organization_id = $1 AND id = $2 FOR UPDATE`, [workspace.organizationId, id]);
      if (!locked) throw new NotFoundError('Workspace');
      await this.assertNoActiveEnvironments(workspace);
      // The audit names the workspace as it was when deleted, not as first read (a rename may have landed).
      const { name, slug } = locked as { name: string; slug: string };
      await query(`DELETE FROM workspaces WHERE organization_id = $1 AND id = $2`, [workspace.organizationId, id]);
      await this.ctx.audit.record({
        organizationId: workspace.organizationId,
        action: 'workspace.deleted',
        resourceType: 'workspace',
        resourceId: id,
        resourceName: name,
        workspaceId: id,
        metadata: { slug },
      });
      return true as const;
    });
  }

  /** Grants, changes or (role null) removes a user's workspace role; the user must be a member of the organization. */
  async setMemberRole(workspaceId: string, userId: string, role: WorkspaceRole | null | undefined): Promise<Workspace> {
    const workspace = await this.ctx.access.workspace(workspaceId);
    const newRole = role ?? null;
    if (newRole !== null && !Object.values(WorkspaceRole).includes(newRole)) {
      throw new BadUserInputError('role', `role must be one of ${Object.values(WorkspaceRole).join(', ')}`);
    }
    // Not a member, not a user, or a malformed id: all answered alike (SPEC §3).
    if (!isUuid(userId)) throw new NotFoundError('User');
    const held = await this.ctx.access.workspacePermissions(workspace);
    const viewer = await this.ctx.access.requireViewer();

    return this.ctx.mutate(async () => {
      const query = this.ctx.tx.query;
      const key = [workspace.organizationId, workspaceId, userId];
      // The membership row is the lock: a grant row that does not exist yet locks nothing, so two
      // first grants would both record previousRole null. It also keeps a concurrent removal out.
      const [membership] = await query(`SELECT 1 FROM memberships WHERE organization_id = $1 AND user_id = $2 FOR NO KEY UPDATE`, [
        workspace.organizationId,
        userId,
      ]);
      if (!membership) throw new NotFoundError('User');
      // No escalation (SPEC §4): after NOT_FOUND, before any write, whoever the grantee is (the caller's own grant included).
      assertCanGrant(held, newRole);
      const [previous] = await query<{ role: WorkspaceRole }>(
        `SELECT role FROM workspace_members WHERE organization_id = $1 AND workspace_id = $2 AND user_id = $3 FOR UPDATE`,
        key,
      );
      // Nobody changes or removes someone else's grant that is worth more than their own (as an admin cannot change an owner).
      if (previous && userId !== viewer.userId) assertCanGrant(held, previous.role);
      if (newRole === null) {
        await query(`DELETE FROM workspace_members WHERE organization_id = $1 AND workspace_id = $2 AND user_id = $3`, key);
      } else {
        await query(
          `INSERT INTO workspace_members (organization_id, workspace_id, user_id, role, granted_by) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (organization_id, workspace_id, user_id) DO UPDATE
             SET role = EXCLUDED.role, granted_by = EXCLUDED.granted_by, granted_at = now()
             WHERE workspace_members.role IS DISTINCT FROM EXCLUDED.role`,
          [...key, newRole, viewer.userId],
        );
      }
      const previousRole = previous?.role ?? null;
      await this.ctx.audit.record({
        organizationId: workspace.organizationId,
        action: 'workspace.member_role_changed',
        resourceType: 'workspace',
        resourceId: workspaceId,
        resourceName: workspace.name,
        workspaceId,
        changes: diffChanges({ role: previousRole }, { role: newRole }, ['role']) ?? NO_CHANGES,
        metadata: { userId, role: newRole, previousRole },
      });
      return workspace;
    });
  }

  private async assertNoActiveEnvironments(workspace: Workspace): Promise<void> {
    const [count] = await this.ctx.tx.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM environments WHERE organization_id = $1 AND workspace_id = $2 AND is_active`,
      [workspace.organizationId, workspace.id],
    );
    const active = count?.n ?? 0;
    if (active > 0) throw new PreconditionFailedError('ACTIVE_ENVIRONMENTS', `Cannot delete a workspace with ${plural(active, 'active environment')}. Destroy ${active === 1 ? 'it' : 'them'} first.`);
  }
}
