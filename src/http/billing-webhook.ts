import { createHmac, timingSafeEqual } from 'node:crypto';
import express, { Router } from 'express';
import { type AppServices, RequestContext } from '../context';
import { isUuid } from '../common/validation';
import { lockSubscription, recordStatusChange, setStatus } from '../modules/billing/subscription.service';
import { SubscriptionStatus } from '../modules/billing/subscription.types';
import { logDetails } from './request-log';

/** How far a webhook's timestamp may be from the service's clock (seconds). */
export const WEBHOOK_TOLERANCE_SECONDS = 300;
export const TIMESTAMP_HEADER = 'billing-timestamp';
export const SIGNATURE_HEADER = 'billing-signature';

/** What a payment provider may report, and from which statuses each move is allowed. */
const TRANSITIONS: Record<string, readonly SubscriptionStatus[]> = {
  [SubscriptionStatus.PAST_DUE]: [SubscriptionStatus.ACTIVE],
  [SubscriptionStatus.SUSPENDED]: [SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE],
  [SubscriptionStatus.ACTIVE]: [SubscriptionStatus.PAST_DUE, SubscriptionStatus.SUSPENDED],
};

/** `v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`, as a provider adapter signs it. */
export function signWebhook(secret: string, timestamp: number | string, body: string | Buffer): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')}`;
}

function signatureMatches(secret: string, timestamp: string, body: Buffer, header: string): boolean {
  const expected = Buffer.from(signWebhook(secret, timestamp, body));
  // Several signatures may be sent while a secret rotates: any one matching is enough.
  return header.split(',').some((candidate) => {
    const given = Buffer.from(candidate.trim());
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

interface WebhookEvent {
  id: string;
  organizationId: string;
  status: SubscriptionStatus;
}

function parse(body: Buffer): WebhookEvent | string {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return 'body is not JSON';
  }
  const e = value as Record<string, unknown>;
  if (!e || typeof e !== 'object') return 'body is not a JSON object';
  if (typeof e.id !== 'string' || e.id.length < 1 || e.id.length > 200) return 'id must be a string of 1 to 200 characters';
  if (e.type !== 'subscription.status') return "type must be 'subscription.status'";
  if (!isUuid(e.organizationId)) return 'organizationId must be a UUID';
  if (typeof e.status !== 'string' || !(e.status in TRANSITIONS)) return `status must be one of ${Object.keys(TRANSITIONS).join(', ')}`;
  return { id: e.id, organizationId: e.organizationId, status: e.status as SubscriptionStatus };
}

/**
 * POST /billing/webhook (README, "Billing webhook"): a provider-neutral, HMAC-signed event moving
 * a subscription to PAST_DUE, SUSPENDED or back to ACTIVE. Refused: 404 when no
 * BILLING_WEBHOOK_SECRET is set, 401 for a missing or bad signature or a timestamp outside ±5
 * minutes, 400 for a malformed event, 404 for an unknown organization, 409 for a move the
 * subscription's status does not allow. An event id already processed answers 200 with
 * `duplicate` and changes nothing. The change runs in one transaction scoped to the organization
 * with the system principal, with its `subscription.status_changed` audit event.
 */
export function billingWebhookRoutes(app: AppServices): Router {
  const router = Router();
  router.post('/billing/webhook', express.raw({ type: () => true, limit: '64kb' }), async (req, res, next) => {
    const secret = app.config.billingWebhookSecret;
    const refuse = (status: number, reason: string) => {
      logDetails(res).reason = reason;
      res.status(status).json({ error: reason });
    };
    if (!secret) return refuse(404, 'not found');
    const timestamp = req.header(TIMESTAMP_HEADER) ?? '';
    const signature = req.header(SIGNATURE_HEADER) ?? '';
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (!/^\d{1,12}$/.test(timestamp) || !signature) return refuse(401, 'missing signature');
    if (!signatureMatches(secret, timestamp, body, signature)) return refuse(401, 'bad signature');
    if (Math.abs(Date.now() / 1000 - Number(timestamp)) > WEBHOOK_TOLERANCE_SECONDS) return refuse(401, 'stale timestamp');
    const event = parse(body);
    if (typeof event === 'string') return refuse(400, event);

    const ctx = RequestContext.forSystem(app, event.organizationId, 'billing-webhook');
    try {
      const outcome = await ctx.mutate(async () => {
        const query = ctx.tx.query;
        const [organization] = await query(`SELECT id FROM organizations WHERE id = $1`, [event.organizationId]);
        if (!organization) return { status: 404, body: { error: 'unknown organization' } };
        const inserted = await query(
          `INSERT INTO billing_webhook_events (organization_id, event_id, type) VALUES ($1, $2, 'subscription.status') ON CONFLICT DO NOTHING RETURNING event_id`,
          [event.organizationId, event.id],
        );
        if (inserted.length === 0) return { status: 200, body: { result: 'duplicate' } };
        const before = await lockSubscription(query, event.organizationId);
        if (!before) return { status: 404, body: { error: 'unknown organization' } };
        if (before.status === event.status) return { status: 200, body: { result: 'unchanged', status: before.status } };
        if (!TRANSITIONS[event.status]!.includes(before.status)) {
          // Nothing is recorded: the savepoint rolls the event id back with everything else.
          throw Object.assign(new Error('transition refused'), { webhook: { status: 409, body: { error: `subscription status ${before.status} cannot become ${event.status}` } } });
        }
        const after = await setStatus(query, event.organizationId, event.status);
        await recordStatusChange(ctx, before, after, { source: 'billing_webhook', eventId: event.id });
        return { status: 200, body: { result: 'applied', status: after.status } };
      });
      await ctx.tx.finish(true);
      if (outcome.status !== 200) logDetails(res).reason = outcome.body.error;
      res.status(outcome.status).json(outcome.body);
    } catch (error) {
      await ctx.tx.finish(false).catch(() => undefined);
      const refusal = (error as { webhook?: { status: number; body: { error: string } } }).webhook;
      if (refusal) return refuse(refusal.status, refusal.body.error);
      next(error);
    }
  });
  return router;
}
