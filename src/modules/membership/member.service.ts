import { NotificationEmitter } from '../notification/notification.emitter';
import { BadUserInputError, ForbiddenError, MfaRequiredError, NotFoundError, PreconditionFailedError } from '../../common/errors';
import { isUuid } from '../../common/validation';
import { hydrator } from '../../database/hydrate';
import type { RequestContext } from '../../context';
import type { Organization } from '../organization/organization.entity';
import { diffChanges, NO_CHANGES } from '../audit/audit.writer';
import { Membership } from './membership.entity';
import { lockMembership } from './membership.lock';

/** The exact phrase transferOwnership asks for (SPEC §5). */
export const TRANSFER_CONFIRMATION = 'transfer ownership';

const lastOwner = (what: string) => new PreconditionFailedError('LAST_OWNER', `The organization's only owner cannot ${what}; transfer ownership first`);

interface LockedMember {
  membership: Membership;
  email: string;
}

/**
 * Changing, removing and leaving memberships, and moving ownership. Callers have passed the shield
 * rules; every method takes the organization's membership lock (membership.lock.ts) before it
 * reads what it decides on, so that exactly one owner exists whatever runs concurrently.
 */
export class MemberService {
  private readonly toMembership;

  constructor(private readonly ctx: RequestContext) {
    this.toMembership = hydrator(ctx.app.db.dataSource, Membership);
  }

  /** A member's role becomes a system or custom role; never `owner` (only a transfer moves it). */
  async updateRole(organizationId: string, userId: string, roleKey: string): Promise<Membership> {
    const organization = await this.ctx.access.organization(organizationId);
    if (!isUuid(userId)) throw new NotFoundError('Member');
    return this.ctx.mutate(async () => {
      await lockMembership(this.ctx, organization.id, 'updateMemberRole');
      const target = await this.lockedMember(organization.id, userId);
      const oldRole = target.membership.roleKey;
      // Nobody changes someone whose role holds more than their own (an admin cannot change an owner).
      await this.assertOutranksOrEquals(organization.id, oldRole);
      await this.ctx.access.assertMayGrantRole(organization.id, roleKey, 'roleKey');
      if (oldRole === 'owner') throw lastOwner('be demoted');
      const [row] = await this.ctx.tx.query(`UPDATE memberships SET role_key = $3 WHERE organization_id = $1 AND user_id = $2 RETURNING *`, [organization.id, userId, roleKey]);
      if (userId === (await this.ctx.access.requireViewer()).userId) await this.ctx.tx.widen(organization.id, roleKey);
      await this.ctx.audit.record({
        organizationId: organization.id,
        action: 'member.role_changed',
        resourceType: 'membership',
        resourceId: userId,
        resourceName: target.email,
        changes: diffChanges({ roleKey: oldRole }, { roleKey }, ['roleKey']) ?? NO_CHANGES,
        metadata: { userId, oldRole, newRole: roleKey },
      });
      return this.toMembership(row!);
    });
  }

  /** Removes a member (their workspace grants go with the membership, by foreign key). */
  async remove(organizationId: string, userId: string): Promise<true> {
    const organization = await this.ctx.access.organization(organizationId);
    if (!isUuid(userId)) throw new NotFoundError('Member');
    return this.ctx.mutate(async () => {
      await lockMembership(this.ctx, organization.id, 'removeMember');
      const target = await this.lockedMember(organization.id, userId);
      await this.assertOutranksOrEquals(organization.id, target.membership.roleKey);
      if (target.membership.roleKey === 'owner') throw lastOwner('be removed');
      await this.deleteMembership(organization.id, userId);
      await this.ctx.audit.record({
        organizationId: organization.id,
        action: 'member.removed',
        resourceType: 'membership',
        resourceId: userId,
        resourceName: target.email,
        metadata: { userId, roleKey: target.membership.roleKey },
      });
      await this.narrowIfSelf(organization.id, userId);
      return true as const;
    });
  }

  /** The viewer leaves; the owner cannot (they transfer ownership first). */
  async leave(organizationId: string): Promise<true> {
    const viewer = await this.ctx.access.requireViewer();
    // Any member may leave, whatever their role: NOT_FOUND only when it is not one of theirs.
    if (!(await this.ctx.access.visibleOrganization(organizationId))) throw new NotFoundError('Organization');
    const id = organizationId;
    return this.ctx.mutate(async () => {
      const role = await lockMembership(this.ctx, id, 'leaveOrganization');
      if (role === 'owner') throw lastOwner('leave');
      await this.deleteMembership(id, viewer.userId);
      await this.ctx.audit.record({
        organizationId: id,
        action: 'member.left',
        resourceType: 'membership',
        resourceId: viewer.userId,
        resourceName: viewer.email,
        metadata: { userId: viewer.userId, roleKey: role },
      });
      await this.narrowIfSelf(id, viewer.userId);
      return true as const;
    });
  }

  /**
   * Moves the owner role to another member; the old owner becomes `admin`. SPEC §6 order:
   * NOT_FOUND (the target is no member) → BAD_USER_INPUT (oneself, the phrase) → MFA_REQUIRED.
   */
  async transferOwnership(organizationId: string, newOwnerId: string, confirmation: string): Promise<Organization> {
    const organization = await this.ctx.access.organization(organizationId);
    const viewer = await this.ctx.access.requireViewer();
    if (!isUuid(newOwnerId)) throw new NotFoundError('Member');
    return this.ctx.mutate(async () => {
      // Owner only (SPEC §5): a custom role holding org.transfer does not make its holder the owner.
      if ((await lockMembership(this.ctx, organization.id, 'transferOwnership')) !== 'owner') throw new ForbiddenError('Only the owner can transfer ownership');
      const target = await this.lockedMember(organization.id, newOwnerId);
      if (newOwnerId === viewer.userId) throw new BadUserInputError('newOwnerId', 'You already own this organization; choose another member');
      if (confirmation !== TRANSFER_CONFIRMATION) throw new BadUserInputError('confirmation', `Type exactly '${TRANSFER_CONFIRMATION}' to confirm`);
      const [current] = await this.ctx.tx.query<{ require_mfa: boolean }>(
        `SELECT coalesce((security->>'requireMfa')::boolean, false) AS require_mfa FROM organizations WHERE id = $1`,
        [organization.id],
      );
      const mfa = this.ctx.principal.kind === 'user' && this.ctx.principal.identity.mfa;
      if (current?.require_mfa && !mfa) throw new MfaRequiredError('Transferring ownership of this organization requires multi-factor authentication');
      const previousRole = target.membership.roleKey;
      // Demote first: the one-owner index is checked at each statement, so two owners never exist even for an instant.
      await this.ctx.tx.query(`UPDATE memberships SET role_key = 'admin' WHERE organization_id = $1 AND user_id = $2 AND role_key = 'owner'`, [organization.id, viewer.userId]);
      await this.ctx.tx.query(`UPDATE memberships SET role_key = 'owner' WHERE organization_id = $1 AND user_id = $2`, [organization.id, newOwnerId]);
      await this.ctx.tx.widen(organization.id, 'admin');
      await this.ctx.audit.record({
        organizationId: organization.id,
        action: 'organization.ownership_transferred',
        resourceType: 'organization',
        resourceId: organization.id,
        resourceName: organization.name,
        changes: { changedFields: ['ownerId'], oldValues: { ownerId: viewer.userId }, newValues: { ownerId: newOwnerId } },
        metadata: { previousOwnerId: viewer.userId, newOwnerId, newOwnerEmail: target.email, newOwnerPreviousRole: previousRole, previousOwnerRole: 'admin' },
      });
      await new NotificationEmitter(this.ctx).emit(
        organization.id,
        {
          type: 'ownership.transferred',
          title: `Ownership of ${organization.name} was transferred`,
          body: `${target.email} is now the owner; ${viewer.email} is now an admin.`,
          metadata: { organizationId: organization.id, previousOwnerId: viewer.userId, newOwnerId },
        },
        { userIds: [viewer.userId, newOwnerId] },
      );
      return organization;
    });
  }

  /** The target membership, read under the lock (NOT_FOUND when the user is no member: same answer as a random id). */
  private async lockedMember(organizationId: string, userId: string): Promise<LockedMember> {
    const [row] = await this.ctx.tx.query<Record<string, unknown> & { email: string }>(
      `SELECT m.*, u.email FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.organization_id = $1 AND m.user_id = $2`,
      [organizationId, userId],
    );
    if (!row) throw new NotFoundError('Member');
    return { membership: this.toMembership(row), email: row.email };
  }

  /** FORBIDDEN when the member's current role holds a permission the viewer lacks (the escalation rule, applied to the role taken away). */
  private async assertOutranksOrEquals(organizationId: string, roleKey: string): Promise<void> {
    const held = await this.ctx.access.rolePermissions(organizationId, roleKey);
    if (held) await this.ctx.access.assertMayGrant(organizationId, held);
  }

  private async deleteMembership(organizationId: string, userId: string): Promise<void> {
    await this.ctx.tx.query(`DELETE FROM memberships WHERE organization_id = $1 AND user_id = $2`, [organizationId, userId]);
  }

  /** Once the viewer's own membership is gone (and audited: the audit row needs the scope), the scope narrows. */
  private async narrowIfSelf(organizationId: string, userId: string): Promise<void> {
    if (userId === (await this.ctx.access.requireViewer()).userId) await this.ctx.tx.narrow(organizationId);
  }
}
