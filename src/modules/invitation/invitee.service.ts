import { lockOrganizationMembership } from '../membership/membership.lock';
import { ConflictError, ForbiddenError, NotFoundError } from '../../common/errors';
import { hydrator } from '../../database/hydrate';
import type { RequestContext } from '../../context';
import { Membership } from '../membership/membership.entity';
import { Role } from '../membership/role.entity';
import { effectiveStatus, Invitation, INVITATION_COLUMNS, InvitationStatus } from './invitation.entity';
import { notPending } from './invitation.service';
import { invitationTokenHash, isWellFormedInvitationToken } from './invitation.token';

/** A row of the SECURITY DEFINER lookups: what a preview shows, plus the ids to continue with. */
interface PreviewRow {
  organization_id: string;
  id: string;
  organization_name: string;
  email: string;
  role_key: string;
  role_id: string;
  role_name: string;
  role_description: string | null;
  role_is_system: boolean;
  role_permissions: string[];
  status: InvitationStatus;
  created_at: Date | string;
  expires_at: Date | string;
  accepted_at: Date | string | null;
}

const date = (value: Date | string): Date => (value instanceof Date ? value : new Date(value));

function fromPreview(row: PreviewRow): Invitation {
  const role = Object.assign(new Role(), {
    organizationId: row.organization_id,
    id: row.role_id,
    key: row.role_key,
    name: row.role_name,
    description: row.role_description,
    isSystem: row.role_is_system,
    storedPermissions: row.role_permissions ?? [],
  });
  return Object.assign(new Invitation(), {
    organizationId: row.organization_id,
    id: row.id,
    email: row.email,
    roleKey: row.role_key,
    storedStatus: row.status,
    invitedBy: null,
    createdAt: date(row.created_at),
    expiresAt: date(row.expires_at),
    acceptedAt: row.accepted_at === null ? null : date(row.accepted_at),
    preview: { organizationName: row.organization_name, role },
  });
}

type Settled<T> = { kind: 'done'; value: T } | { kind: 'expired' };

/**
 * Invitations seen by their invitee, before the tenant is known: the preview by token, accept,
 * decline, and the viewer's own pending ones. The lookups go through the SECURITY DEFINER
 * functions of the invitations migration (one token hash at a time, or the viewer's own verified
 * address); the token is hashed at once and never logged, audited or echoed.
 */
export class InviteeService {
  private readonly toInvitation;
  private readonly toMembership;

  constructor(private readonly ctx: RequestContext) {
    this.toInvitation = hydrator(ctx.app.db.dataSource, Invitation);
    this.toMembership = hydrator(ctx.app.db.dataSource, Membership);
  }

  /** The invitation a token names, as a preview; NOT_FOUND for an unknown or malformed token. */
  async byToken(token: unknown): Promise<Invitation> {
    if (!isWellFormedInvitationToken(token)) throw new NotFoundError('Invitation');
    const [row] = await this.ctx.tx.query<PreviewRow>(`SELECT * FROM invitation_by_token_hash(decode($1, 'hex'))`, [invitationTokenHash(token)]);
    if (!row) throw new NotFoundError('Invitation');
    return fromPreview(row);
  }

  /** The PENDING, unexpired invitations addressed to the viewer's verified email, in every organization. */
  async pendingForViewer(): Promise<Invitation[]> {
    const viewer = await this.ctx.access.requireViewer();
    if (!viewer.emailVerified) return [];
    return (await this.ctx.tx.query<PreviewRow>(`SELECT * FROM invitations_pending_for_me()`)).map(fromPreview);
  }

  /** The viewer joins with the invited role; exactly one membership however many accept at once. */
  async accept(token: unknown): Promise<Membership> {
    const { invitation, viewer } = await this.addressedToViewer(token);
    const settled = await this.settle(invitation, async (locked, wasMember) => {
      if (wasMember) throw new ConflictError('You are already a member of this organization');
      // The locked row decides the role (the preview was read without a lock).
      if (locked.roleKey !== invitation.roleKey) await this.ctx.joined(locked.organizationId, locked.roleKey);
      const [row] = await this.ctx.tx.query(
        `INSERT INTO memberships (organization_id, user_id, role_key, invited_by) VALUES ($1, $2, $3, $4) RETURNING *`,
        [locked.organizationId, viewer.userId, locked.roleKey, locked.invitedBy],
      );
      await this.ctx.tx.query(`UPDATE invitations SET status = 'ACCEPTED', accepted_at = now(), accepted_by = $3, updated_at = now() WHERE organization_id = $1 AND id = $2`, [
        locked.organizationId,
        locked.id,
        viewer.userId,
      ]);
      await this.ctx.audit.record({
        organizationId: locked.organizationId,
        action: 'member.joined',
        resourceType: 'membership',
        resourceId: viewer.userId,
        resourceName: viewer.email,
        metadata: { roleKey: locked.roleKey, invitationId: locked.id, via: 'invitation' },
      });
      return this.toMembership(row!);
    }, true);
    if (settled.kind === 'expired') throw notPending(InvitationStatus.EXPIRED);
    return settled.value;
  }

  /** The invitee turns the invitation down; it can no longer be accepted. */
  async decline(token: unknown): Promise<Invitation> {
    const { invitation } = await this.addressedToViewer(token);
    const settled = await this.settle(invitation, async (locked) => {
      const [row] = await this.ctx.tx.query(
        `UPDATE invitations SET status = 'DECLINED', declined_at = now(), updated_at = now() WHERE organization_id = $1 AND id = $2 RETURNING ${INVITATION_COLUMNS}`,
        [locked.organizationId, locked.id],
      );
      await this.ctx.audit.record({
        organizationId: locked.organizationId,
        action: 'invitation.declined',
        resourceType: 'invitation',
        resourceId: locked.id,
        resourceName: locked.email,
        changes: { changedFields: ['status'], oldValues: { status: 'PENDING' }, newValues: { status: 'DECLINED' } },
      });
      return Object.assign(this.toInvitation(row!), { preview: invitation.preview });
    }, false);
    if (settled.kind === 'expired') throw notPending(InvitationStatus.EXPIRED);
    return settled.value;
  }

  /**
   * NOT_FOUND for an unknown token; FORBIDDEN unless the viewer's verified email is the invited
   * address (SPEC §6: before any state check, so the invitation stays as it is).
   */
  private async addressedToViewer(token: unknown) {
    const viewer = await this.ctx.access.requireViewer();
    const invitation = await this.byToken(token);
    if (!viewer.emailVerified) throw new ForbiddenError('Your email address must be verified to answer an invitation');
    if (viewer.email.trim().toLowerCase() !== invitation.email) throw new ForbiddenError('This invitation is addressed to another email address');
    return { invitation, viewer };
  }

  /**
   * Runs `work` on the invitation row locked FOR UPDATE while it is PENDING and unexpired, in one
   * mutation. The invitee is not a member yet: the scope widens to the organization for the
   * mutation (and narrows again unless `joins`). A row found expired is marked EXPIRED and that
   * is committed (`{ kind: 'expired' }`): the caller then fails with INVITATION_EXPIRED.
   */
  private settle<T>(invitation: Invitation, work: (locked: Invitation, wasMember: boolean) => Promise<T>, joins: boolean): Promise<Settled<T>> {
    return this.ctx.mutate(async (): Promise<Settled<T>> => {
      const organizationId = invitation.organizationId;
      const wasMember = (await this.ctx.access.roleIn(organizationId)) !== null;
      if (!wasMember) await this.ctx.joined(organizationId, invitation.roleKey);
      // Joining writes to the organization: refused while it is read-only (SUSPENDED or EXPIRED subscription).
      if (joins) {
        this.ctx.scopeWrite('acceptInvitation', organizationId);
        await this.ctx.assertWritable();
      }
      // The organization's membership lock first, as every membership change takes it.
      await lockOrganizationMembership(this.ctx, organizationId);
      const [row] = await this.ctx.tx.query(`SELECT ${INVITATION_COLUMNS} FROM invitations WHERE organization_id = $1 AND id = $2 FOR UPDATE`, [organizationId, invitation.id]);
      if (!row) throw new NotFoundError('Invitation');
      const locked = this.toInvitation(row);
      const status = effectiveStatus(locked);
      if (status === InvitationStatus.EXPIRED && locked.storedStatus === InvitationStatus.PENDING) {
        await this.ctx.tx.query(`UPDATE invitations SET status = 'EXPIRED', updated_at = now() WHERE organization_id = $1 AND id = $2`, [organizationId, locked.id]);
        if (!wasMember) await this.ctx.tx.narrow(organizationId);
        return { kind: 'expired' };
      }
      if (status !== InvitationStatus.PENDING) throw notPending(status);
      const value = await work(locked, wasMember);
      if (!wasMember && !joins) await this.ctx.tx.narrow(organizationId);
      return { kind: 'done', value };
    });
  }
}
