import { pgError } from '../../common/errors';
import type { RequestContext } from '../../context';
import { BUILT_IN_DEFAULT_SQL, goesToOrganizationEmail, type NotificationMessage } from './notification.types';

/** Who an event goes to, resolved to the organization's current members in the emitting transaction. */
export type Recipients =
  | { userIds: readonly string[] }
  /** Members holding one of these role keys (e.g. owners and admins). */
  | { roleKeys: readonly string[] }
  | { allMembers: true };

const FOREIGN_KEY_VIOLATION = '23503';

export const OWNERS_AND_ADMINS: Recipients = { roleKeys: ['owner', 'admin'] };
export const OWNERS: Recipients = { roleKeys: ['owner'] };

/** What routing one event did. */
export interface Routed {
  /** Recipients whose channel is not NONE (what publishNotification returns). */
  recipients: number;
  inbox: number;
  emails: number;
  digested: number;
}

/** One email for a mailer (an `email_outbox` row; SPEC §5, README "Notifications" for the shape). */
export interface OutboxEmail {
  type: string;
  recipientEmail: string;
  userId?: string | null;
  payload: Record<string, unknown>;
  /** Unique per organization: a second row with the same key is not written (idempotent producers). */
  dedupeKey?: string | null;
}

/**
 * THE notification emitter (SPEC §5): every notification of the service — built-in types and
 * published ones — is routed here, in the transaction of the change that causes it (the caller's
 * `ctx.mutate`, or a job's unit of work), so a rolled-back change notifies nobody.
 *
 * Per recipient the channel is: the member's override for the type, else the organization's
 * default for it, else the built-in default (security and billing types BOTH, others IN_APP).
 * IN_APP writes an inbox row, EMAIL an outbox row (or, with the daily digest on, a digest item
 * the `notification_digest` job folds into one outbox row per day), BOTH both, NONE nothing.
 * Security and billing types are also emailed to the organization's `notificationEmail`. Each
 * event is recorded, routed, in `notification_events`.
 */
export class NotificationEmitter {
  constructor(private readonly ctx: RequestContext) {}

  /**
   * Routes one event. A member removed by a transaction that commits while this statement runs
   * makes its inbox row's reference to the membership fail (foreign key): the routing is then
   * undone (its own savepoint) and done again, resolving the members anew — so the removed member
   * is not a recipient, and the change that emits never fails because of it.
   */
  async emit(organizationId: string, message: NotificationMessage, recipients: Recipients): Promise<Routed> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.ctx.tx.savepoint(() => this.route(organizationId, message, recipients));
      } catch (error) {
        if (attempt >= 3 || pgError(error)?.code !== FOREIGN_KEY_VIOLATION) throw error;
      }
    }
  }

  private async route(organizationId: string, message: NotificationMessage, recipients: Recipients): Promise<Routed> {
    const userIds = 'userIds' in recipients ? [...recipients.userIds] : null;
    const roleKeys = 'roleKeys' in recipients ? [...recipients.roleKeys] : null;
    const metadata = message.metadata ?? null;
    const emailPayload = { organizationId, type: message.type, title: message.title, body: message.body ?? null, metadata };
    // One statement: resolve the members and their channels, then write every row of the routing.
    // No RETURNING on notifications: the rows belong to their recipients, whom the policy lets read them.
    const [row] = await this.ctx.tx.query<Routed>(
      `WITH r AS (
         SELECT m.user_id, u.email, coalesce(p.channel, d.channel, ${BUILT_IN_DEFAULT_SQL('$2::text')}) AS channel, coalesce(s.email_digest, false) AS digest
         FROM memberships m
         JOIN users u ON u.id = m.user_id
         LEFT JOIN notification_preferences p ON p.organization_id = m.organization_id AND p.user_id = m.user_id AND p.type = $2
         LEFT JOIN notification_defaults d ON d.organization_id = m.organization_id AND d.type = $2
         LEFT JOIN notification_member_settings s ON s.organization_id = m.organization_id AND s.user_id = m.user_id
         WHERE m.organization_id = $1 AND ($7::uuid[] IS NULL OR m.user_id = ANY ($7::uuid[])) AND ($8::text[] IS NULL OR m.role_key = ANY ($8::text[]))
       ), inbox AS (
         INSERT INTO notifications (organization_id, user_id, member_user_id, type, title, body, metadata)
         SELECT $1, user_id, user_id, $2, $3, $4, $5::jsonb FROM r WHERE channel IN ('IN_APP', 'BOTH')
       ), mail AS (
         INSERT INTO email_outbox (organization_id, type, recipient_email, user_id, payload)
         SELECT $1, $2, email, user_id, $6::jsonb FROM r WHERE channel IN ('EMAIL', 'BOTH') AND NOT digest
       ), digest AS (
         INSERT INTO notification_digest_items (organization_id, user_id, type, title, body, metadata)
         SELECT $1, user_id, $2, $3, $4, $5::jsonb FROM r WHERE channel IN ('EMAIL', 'BOTH') AND digest
       ), organization_mail AS (
         INSERT INTO email_outbox (organization_id, type, recipient_email, payload)
         SELECT o.id, $2, o.settings->>'notificationEmail', $6::jsonb FROM organizations o
         WHERE o.id = $1 AND $9::boolean AND coalesce(o.settings->>'notificationEmail', '') <> ''
       ), event AS (
         INSERT INTO notification_events (organization_id, type, payload, routed_at) VALUES ($1, $2, coalesce($5::jsonb, '{}'::jsonb), now())
       )
       SELECT count(*) FILTER (WHERE channel <> 'NONE')::int AS recipients,
              count(*) FILTER (WHERE channel IN ('IN_APP', 'BOTH'))::int AS inbox,
              count(*) FILTER (WHERE channel IN ('EMAIL', 'BOTH') AND NOT digest)::int AS emails,
              count(*) FILTER (WHERE channel IN ('EMAIL', 'BOTH') AND digest)::int AS digested
       FROM r`,
      [
        organizationId,
        message.type,
        message.title,
        message.body ?? null,
        metadata === null ? null : JSON.stringify(metadata),
        JSON.stringify(emailPayload),
        userIds,
        roleKeys,
        goesToOrganizationEmail(message.type),
      ],
    );
    return row!;
  }

  /**
   * `member.invited` to the invitee, once they have an account (a verified one with the invited
   * address): in-app, per the organization's channel for the type (the invitee has no overrides
   * yet). Its email is the invitation email itself (`invitation.created`, always queued by the
   * invitation service), so nothing more is queued here. The row references the invitation.
   */
  async notifyInvitee(organizationId: string, invitationId: string, email: string, message: NotificationMessage): Promise<void> {
    await this.ctx.tx.query(
      `INSERT INTO notifications (organization_id, user_id, invitation_id, type, title, body, metadata)
       SELECT $1, invitee, $2, $4, $5, $6, $7::jsonb
       FROM notification_recipients_by_email($3) AS invitee
       WHERE coalesce((SELECT channel FROM notification_defaults WHERE organization_id = $1 AND type = $4), ${BUILT_IN_DEFAULT_SQL('$4::text')}) IN ('IN_APP', 'BOTH')
         AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.organization_id = $1 AND m.user_id = invitee)`,
      [organizationId, invitationId, email, message.type, message.title, message.body ?? null, message.metadata ? JSON.stringify(message.metadata) : null],
    );
  }

  /** The one writer of the email outbox (transactional emails such as the invitation itself; routed ones go through emit). */
  async queueEmail(organizationId: string, email: OutboxEmail): Promise<void> {
    await this.ctx.tx.query(
      `INSERT INTO email_outbox (organization_id, type, recipient_email, user_id, payload, dedupe_key) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (organization_id, dedupe_key) DO NOTHING`,
      [organizationId, email.type, email.recipientEmail, email.userId ?? null, JSON.stringify(email.payload), email.dedupeKey ?? null],
    );
  }
}
