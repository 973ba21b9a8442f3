import type { JobKind } from '../../jobs/scheduler';

/** The outbox type of a daily digest. */
export const DIGEST_EMAIL_TYPE = 'notification.digest';

/**
 * The daily email digest (SPEC §5): once a UTC day is over (compared with the database's now()),
 * the day's digest items of each recipient become ONE `email_outbox` row (type
 * `notification.digest`, payload `{ organizationId, day, items: [{ type, title, body, metadata,
 * createdAt }] }`, dedupe key `digest:<user>:<day>`). Items are claimed with FOR UPDATE SKIP
 * LOCKED and marked digested in the same statement, so several instances never build a digest
 * twice, and a rerun finds nothing due.
 */
export const notificationDigestJob: JobKind = {
  kind: 'notification_digest',
  dueFunction: 'app_due_notification_digest',
  async run(ctx) {
    if (ctx.principal.kind !== 'system') return 0;
    const [row] = await ctx.tx.query<{ digests: number }>(
      `WITH claimed AS (
         SELECT id, user_id, day, type, title, body, metadata, created_at FROM notification_digest_items
         WHERE organization_id = $1 AND digested_at IS NULL AND day < (now() AT TIME ZONE 'UTC')::date
         FOR UPDATE SKIP LOCKED
       ), mail AS (
         INSERT INTO email_outbox (organization_id, type, recipient_email, user_id, payload, dedupe_key)
         SELECT $1, $2, u.email, c.user_id,
                jsonb_build_object('organizationId', $1::uuid, 'day', c.day, 'items',
                  jsonb_agg(jsonb_build_object('type', c.type, 'title', c.title, 'body', c.body, 'metadata', c.metadata, 'createdAt', c.created_at) ORDER BY c.created_at, c.id)),
                'digest:' || c.user_id || ':' || c.day
         FROM claimed c JOIN users u ON u.id = c.user_id
         GROUP BY c.user_id, c.day, u.email
         ON CONFLICT (organization_id, dedupe_key) DO NOTHING
       ), done AS (
         UPDATE notification_digest_items SET digested_at = now() WHERE organization_id = $1 AND id IN (SELECT id FROM claimed)
       )
       SELECT count(DISTINCT (user_id, day))::int AS digests FROM claimed`,
      [ctx.principal.organizationId, DIGEST_EMAIL_TYPE],
    );
    return row?.digests ?? 0;
  },
};
