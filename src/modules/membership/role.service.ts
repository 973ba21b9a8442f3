import { BadUserInputError, ConflictError, NotFoundError, plural, PreconditionFailedError, uniqueOrConflict } from '../../common/errors';
import { optionalText, requiredName } from '../../common/validation';
import { isPermission, MACHINE_ONLY_PERMISSIONS, type Permission, SYSTEM_ROLE_KEYS } from '../../authz/permissions';
import { hydrator } from '../../database/hydrate';
import type { RequestContext } from '../../context';
import { diffChanges, NO_CHANGES } from '../audit/audit.writer';
import { lockMembership } from './membership.lock';
import { Role } from './role.entity';
import type { CreateRoleInput, UpdateRoleInput } from './role.inputs';

const ROLE_KEY = /^[a-z][a-z0-9_]{1,39}$/;
const AUDITED_FIELDS = ['name', 'description', 'permissions'] as const;
const auditView = (r: Role): Record<string, unknown> => ({ name: r.name, description: r.description, permissions: [...r.storedPermissions].sort() });

/**
 * The permissions of a custom role: catalog codes only, never the machine-only ones (SPEC §4),
 * deduplicated and sorted. Unknown codes are bad input (checked before escalation: an unknown
 * code cannot be held by anyone, and saying FORBIDDEN for a typo would mislead).
 */
function rolePermissions(codes: readonly string[]): Permission[] {
  const unique = [...new Set(codes)];
  const unknown = unique.filter((c) => !isPermission(c));
  if (unknown.length > 0) throw new BadUserInputError('permissions', `Unknown permission${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`);
  const machine = unique.filter((c) => MACHINE_ONLY_PERMISSIONS.includes(c as Permission));
  if (machine.length > 0) throw new BadUserInputError('permissions', `${machine.join(', ')} can be given to API keys only, never to a role`);
  return (unique as Permission[]).sort();
}

const systemRoleFixed = () => new PreconditionFailedError('SYSTEM_ROLE', 'System roles cannot be changed or deleted');

/**
 * Custom roles (plan feature `custom_roles`). Callers have passed the shield rules
 * (`org.roles.manage`); this checks what depends on state: the escalation rule (nobody creates or
 * edits a role holding a permission they lack), system roles being fixed, a role in use.
 * Each write takes the organization's membership lock, so that an assignment racing an edit sees
 * the role either before or after it, never half.
 */
export class RoleService {
  private readonly toRole;

  constructor(private readonly ctx: RequestContext) {
    this.toRole = hydrator(ctx.app.db.dataSource, Role);
  }

  /** SPEC §6 order: NOT_FOUND → FORBIDDEN (escalation) → BAD_USER_INPUT → FEATURE_DISABLED → CONFLICT. */
  async create(organizationId: string, input: CreateRoleInput): Promise<Role> {
    const organization = await this.ctx.access.organization(organizationId);
    const permissions = rolePermissions(input.permissions ?? []);

    return this.ctx.mutate(async () => {
      await lockMembership(this.ctx, organization.id, 'createRole');
      await this.ctx.access.assertMayGrant(organization.id, permissions);
      const key = typeof input.key === 'string' ? input.key : '';
      if (!ROLE_KEY.test(key)) throw new BadUserInputError('key', 'key must match ^[a-z][a-z0-9_]{1,39}$ (lowercase letters, digits, underscores)');
      if (SYSTEM_ROLE_KEYS.includes(key)) throw new BadUserInputError('key', `'${key}' is a system role key`);
      const name = requiredName(input.name);
      const description = optionalText(input.description, 'description', 2000);
      await this.requireFeature(organization.id);
      const [row] = await uniqueOrConflict(
        (fn) => this.ctx.tx.savepoint(fn),
        () =>
          this.ctx.tx.query(
            `INSERT INTO roles (organization_id, key, name, description, is_system, permissions) VALUES ($1, $2, $3, $4, false, $5) RETURNING *`,
            [organization.id, key, name, description, permissions],
          ),
        { constraint: 'roles_key_key', message: `Role with key '${key}' already exists`, field: 'key' },
      );
      const role = this.toRole(row!);
      await this.ctx.audit.record({
        organizationId: organization.id,
        action: 'role.created',
        resourceType: 'role',
        resourceId: role.id,
        resourceName: role.name,
        metadata: { key: role.key, permissions },
      });
      return role;
    });
  }

  /** Name, description and permissions; members holding the role have the new permissions from their next request. */
  async update(id: string, input: UpdateRoleInput): Promise<Role> {
    const visible = await this.ctx.access.role(id);
    const permissions = input.permissions === undefined ? undefined : input.permissions === null ? null : rolePermissions(input.permissions);

    return this.ctx.mutate(async () => {
      await lockMembership(this.ctx, visible.organizationId, 'updateRole');
      const current = await this.lockedRole(visible.organizationId, id);
      // Both what the role gains and what it already holds: editing a role worth more than one's
      // own (even to remove from it) is an escalation path too.
      await this.ctx.access.assertMayGrant(visible.organizationId, current.storedPermissions.filter(isPermission));
      if (permissions) await this.ctx.access.assertMayGrant(visible.organizationId, permissions);
      if (permissions === null) throw new BadUserInputError('permissions', 'permissions cannot be null; omit it to leave them unchanged');
      const name = input.name === undefined ? undefined : requiredName(input.name);
      const description = input.description === undefined ? undefined : optionalText(input.description, 'description', 2000);
      await this.requireFeature(visible.organizationId);
      if (current.isSystem) throw systemRoleFixed();
      const next: Role = { ...current, name: name ?? current.name, description: description === undefined ? current.description : description, storedPermissions: permissions ?? current.storedPermissions };
      const changes = diffChanges(auditView(current), auditView(next), AUDITED_FIELDS);
      const [row] = await this.ctx.tx.query(
        `UPDATE roles SET name = $3, description = $4, permissions = $5, updated_at = CASE WHEN $6::boolean THEN now() ELSE updated_at END
         WHERE organization_id = $1 AND id = $2 RETURNING *`,
        [current.organizationId, id, next.name, next.description, next.storedPermissions, changes !== null],
      );
      const role = this.toRole(row!);
      await this.ctx.audit.record({
        organizationId: role.organizationId,
        action: 'role.updated',
        resourceType: 'role',
        resourceId: role.id,
        resourceName: role.name,
        changes: changes ?? NO_CHANGES,
        metadata: { key: role.key },
      });
      return role;
    });
  }

  /** A role held by a member or offered by a pending invitation cannot be deleted (CONFLICT). */
  async delete(id: string): Promise<true> {
    const visible = await this.ctx.access.role(id);

    return this.ctx.mutate(async () => {
      await lockMembership(this.ctx, visible.organizationId, 'deleteRole');
      const current = await this.lockedRole(visible.organizationId, id);
      await this.ctx.access.assertMayGrant(visible.organizationId, current.storedPermissions.filter(isPermission));
      await this.requireFeature(visible.organizationId);
      if (current.isSystem) throw systemRoleFixed();
      // In use: held by a member, or offered by a pending invitation (accepting it would need the role).
      const [use] = await this.ctx.tx.query<{ members: number; invitations: number }>(
        `SELECT (SELECT count(*)::int FROM memberships WHERE organization_id = $1 AND role_key = $2) AS members,
                (SELECT count(*)::int FROM invitations WHERE organization_id = $1 AND role_key = $2 AND status = 'PENDING') AS invitations`,
        [current.organizationId, current.key],
      );
      if (use && (use.members > 0 || use.invitations > 0)) {
        const holders = [use.members > 0 ? plural(use.members, 'member') : null, use.invitations > 0 ? plural(use.invitations, 'pending invitation') : null].filter(Boolean).join(' and ');
        throw new ConflictError(`Role '${current.key}' is in use by ${holders}; give them another role first`, { field: 'id' });
      }
      await this.ctx.tx.query(`DELETE FROM roles WHERE organization_id = $1 AND id = $2`, [current.organizationId, id]);
      await this.ctx.audit.record({
        organizationId: current.organizationId,
        action: 'role.deleted',
        resourceType: 'role',
        resourceId: id,
        resourceName: current.name,
        metadata: { key: current.key, permissions: [...current.storedPermissions].sort() },
      });
      return true as const;
    });
  }

  /**
   * The role as it is now, read under the organization's membership lock (which every role write
   * takes first, so no row lock is needed — and FOR UPDATE would hide system roles, whose rows the
   * service's database role may not update).
   */
  private async lockedRole(organizationId: string, id: string): Promise<Role> {
    const [row] = await this.ctx.tx.query(`SELECT * FROM roles WHERE organization_id = $1 AND id = $2`, [organizationId, id]);
    if (!row) throw new NotFoundError('Role');
    return this.toRole(row);
  }

  /** Custom roles are a plan feature (SPEC §5 table): FEATURE_DISABLED with extensions.feature otherwise. */
  private async requireFeature(organizationId: string): Promise<void> {
    await this.ctx.access.requireFeature(organizationId, 'custom_roles');
  }
}
