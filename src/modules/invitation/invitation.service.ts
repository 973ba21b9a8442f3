import { NotificationEmitter } from '../notification/notification.emitter';
import { lockMembership } from '../membership/membership.lock';
import { QuotaChecker } from '../quota/quota.checker';
import { QuotaResource } from '../quota/quota.types';
import { BadUserInputError, ConflictError, NotFoundError, PreconditionFailedError } from '../../common/errors';
import { keysetConnection, keysetPage, type ConnectionShape } from '../../common/pagination';
import { intInRange, optionalEmail } from '../../common/validation';
import { hydrator } from '../../database/hydrate';
import type { RequestContext } from '../../context';
import { effectiveStatus, Invitation, INVITATION_COLUMNS, InvitationStatus, type InvitationTicket, type InviteMemberInput } from './invitation.entity';
import { invitationTokenHash, newInvitationToken } from './invitation.token';

/** The PRECONDITION_FAILED of an invitation that is no longer pending (SPEC §5 reasons). */
export function notPending(status: InvitationStatus): PreconditionFailedError {
  const messages: Record<InvitationStatus, string> = {
    PENDING: 'This invitation is pending',
    ACCEPTED: 'This invitation has already been accepted',
    REVOKED: 'This invitation has been revoked',
    EXPIRED: 'This invitation has expired',
    DECLINED: 'This invitation has been declined',
  };
  return new PreconditionFailedError(`INVITATION_${status}`, messages[status]);
}

/** The invitation email for a mailer (never the token: SPEC §5, the ticket is returned once to the inviter), and member.invited in-app. */
export async function queueInvitationEmail(ctx: RequestContext, type: 'invitation.created' | 'invitation.resent', invitation: Invitation, organizationName: string): Promise<void> {
  const viewer = await ctx.access.requireViewer();
  const emitter = new NotificationEmitter(ctx);
  // The invitation email itself is transactional: always queued, whatever anyone's channels (it is
  // also the email of the member.invited notification).
  await emitter.queueEmail(invitation.organizationId, {
    type,
    recipientEmail: invitation.email,
    payload: {
      invitationId: invitation.id,
      organizationId: invitation.organizationId,
      organizationName,
      roleKey: invitation.roleKey,
      expiresAt: invitation.expiresAt.toISOString(),
      invitedBy: { id: viewer.userId, email: viewer.email, name: viewer.name },
    },
  });
  if (type === 'invitation.created') {
    // member.invited, in-app, to the invitee once they have an account (SPEC §5).
    await emitter.notifyInvitee(invitation.organizationId, invitation.id, invitation.email, {
      type: 'member.invited',
      title: `You were invited to join ${organizationName}`,
      body: `${viewer.name ?? viewer.email} invited you as ${invitation.roleKey}. The invitation expires on ${invitation.expiresAt.toISOString().slice(0, 10)}.`,
      metadata: { invitationId: invitation.id, organizationId: invitation.organizationId, organizationName, roleKey: invitation.roleKey, expiresAt: invitation.expiresAt.toISOString() },
    });
  }
}

/**
 * Invitations seen from their organization: invite, resend, revoke, list. Callers have passed the
 * shield rules (`org.members.invite`); this checks what depends on state. Every mutation locks
 * the rows it changes and writes one audit event in its transaction; tokens appear in none of them.
 */
export class InvitationService {
  private readonly toInvitation;

  constructor(private readonly ctx: RequestContext) {
    this.toInvitation = hydrator(ctx.app.db.dataSource, Invitation);
  }

  /** A new invitation (a pending one for the same address is replaced); the token is returned here and never again. */
  async invite(organizationId: string, input: InviteMemberInput): Promise<InvitationTicket> {
    const organization = await this.ctx.access.organization(organizationId);
    // FORBIDDEN (a role above the inviter's) comes before any BAD_USER_INPUT of the other fields (SPEC §6).
    await this.ctx.access.assertMayGrantRole(organization.id, input.roleKey, 'roleKey');
    const email = optionalEmail(input.email, 'email');
    if (!email) throw new BadUserInputError('email', 'email is required');
    const days = intInRange(input.expiresInDays ?? 7, 'expiresInDays', 1, 30);
    const query = this.ctx.tx.query;

    return this.ctx.mutate(async () => {
      // The organization's membership lock first (src/modules/membership/membership.lock.ts): the
      // role offered cannot be deleted or gain permissions between the check and the insert.
      await lockMembership(this.ctx, organization.id, 'inviteMember');
      await this.ctx.access.assertMayGrantRole(organization.id, input.roleKey, 'roleKey');
      // Invitations of one address to one organization are serialised: the last one wins, the others are REVOKED.
      await query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`invitation:${organization.id}:${email}`]);
      // MEMBERS quota (memberships + PENDING unexpired invitations), counted under the membership
      // lock taken above (the quota checker's lock is that very lock). Replacing a pending,
      // unexpired invitation of the same address takes over its seat: nothing more is consumed.
      const [holdsSeat] = await query(`SELECT 1 FROM invitations WHERE organization_id = $1 AND email = $2 AND status = 'PENDING' AND expires_at > now()`, [
        organization.id,
        email,
      ]);
      if (!holdsSeat) await new QuotaChecker(this.ctx).admit(organization.id, { [QuotaResource.MEMBERS]: 1 });
      const members = await query(
        `SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.organization_id = $1 AND lower(u.email) = $2 LIMIT 1`,
        [organization.id, email],
      );
      if (members.length > 0) throw new ConflictError(`${email} is already a member of this organization`, { field: 'email' });
      // The pending one is replaced: REVOKED, or EXPIRED when its time had passed anyway.
      const replaced = await query<{ id: string }>(
        `UPDATE invitations SET status = CASE WHEN expires_at > now() THEN 'REVOKED' ELSE 'EXPIRED' END,
           revoked_at = CASE WHEN expires_at > now() THEN now() END, updated_at = now()
         WHERE organization_id = $1 AND email = $2 AND status = 'PENDING' RETURNING id`,
        [organization.id, email],
      );
      const token = newInvitationToken();
      const viewer = await this.ctx.access.requireViewer();
      const [row] = await query(
        `INSERT INTO invitations (organization_id, email, role_key, token_hash, valid_days, invited_by, expires_at)
         VALUES ($1, $2, $3, decode($4, 'hex'), $5::int, $6, now() + make_interval(days => $5::int)) RETURNING ${INVITATION_COLUMNS}`,
        [organization.id, email, input.roleKey, invitationTokenHash(token), days, viewer.userId],
      );
      const invitation = this.toInvitation(row!);
      await queueInvitationEmail(this.ctx, 'invitation.created', invitation, organization.name);
      await this.ctx.audit.record({
        organizationId: organization.id,
        action: 'member.invited',
        resourceType: 'invitation',
        resourceId: invitation.id,
        resourceName: email,
        metadata: { email, roleKey: invitation.roleKey, expiresAt: invitation.expiresAt.toISOString(), ...(replaced[0] ? { replacedInvitationId: replaced[0].id } : {}) },
      });
      return { invitation, token };
    });
  }

  /** A new token (the old one stops working) and a new expiry, for a PENDING invitation only. */
  async resend(id: string): Promise<InvitationTicket> {
    const current = await this.ctx.access.invitation(id);
    const organization = await this.ctx.access.organization(current.organizationId);
    return this.ctx.mutate(async () => {
      const locked = await this.lockPending(current);
      const token = newInvitationToken();
      const [row] = await this.ctx.tx.query(
        `UPDATE invitations SET token_hash = decode($3, 'hex'), expires_at = now() + make_interval(days => valid_days), updated_at = now()
         WHERE organization_id = $1 AND id = $2 RETURNING ${INVITATION_COLUMNS}`,
        [locked.organizationId, locked.id, invitationTokenHash(token)],
      );
      const invitation = this.toInvitation(row!);
      await queueInvitationEmail(this.ctx, 'invitation.resent', invitation, organization.name);
      await this.ctx.audit.record({
        organizationId: invitation.organizationId,
        action: 'invitation.resent',
        resourceType: 'invitation',
        resourceId: invitation.id,
        resourceName: invitation.email,
        changes: { changedFields: ['expiresAt'], oldValues: { expiresAt: locked.expiresAt.toISOString() }, newValues: { expiresAt: invitation.expiresAt.toISOString() } },
      });
      return { invitation, token };
    });
  }

  async revoke(id: string): Promise<Invitation> {
    const current = await this.ctx.access.invitation(id);
    return this.ctx.mutate(async () => {
      const locked = await this.lockPending(current);
      const [row] = await this.ctx.tx.query(
        `UPDATE invitations SET status = 'REVOKED', revoked_at = now(), updated_at = now() WHERE organization_id = $1 AND id = $2 RETURNING ${INVITATION_COLUMNS}`,
        [locked.organizationId, locked.id],
      );
      const invitation = this.toInvitation(row!);
      await this.ctx.audit.record({
        organizationId: invitation.organizationId,
        action: 'invitation.revoked',
        resourceType: 'invitation',
        resourceId: invitation.id,
        resourceName: invitation.email,
        changes: { changedFields: ['status'], oldValues: { status: 'PENDING' }, newValues: { status: 'REVOKED' } },
      });
      return invitation;
    });
  }

  /** The row under lock, still PENDING and unexpired; PRECONDITION_FAILED with its reason otherwise. */
  private async lockPending(invitation: Invitation): Promise<Invitation> {
    const [row] = await this.ctx.tx.query(`SELECT ${INVITATION_COLUMNS} FROM invitations WHERE organization_id = $1 AND id = $2 FOR UPDATE`, [invitation.organizationId, invitation.id]);
    if (!row) throw new NotFoundError('Invitation');
    const locked = this.toInvitation(row);
    const status = effectiveStatus(locked);
    if (status !== InvitationStatus.PENDING) throw notPending(status);
    return locked;
  }

  /** An organization's invitations, newest first, keyset-paginated on (created_at, id); batched across organizations. */
  async list(organizationId: string, status: InvitationStatus | null | undefined, first: number | null | undefined, after: string | null | undefined): Promise<ConnectionShape<Invitation>> {
    const page = keysetPage(first, after);
    const filter = { status: status ?? null };
    const rows = await this.ctx.loaders.invitationPage.load({ ownerId: organizationId, limit: page.limit + 1, after: page.after, filter });
    return keysetConnection(rows, page, (i) => [i.createdAt, i.id], () => this.ctx.loaders.invitationCount.load({ ownerId: organizationId, filter }));
  }
}
