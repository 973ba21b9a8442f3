import type { RequestContext } from '../../context';
import type { JobKind } from '../../jobs/scheduler';
import { ARCHIVE_AFTER_DAYS, recordStatusChange } from './subscription.service';
import { PERIOD_SQL, subscriptionFromRow, type SubscriptionRow } from './subscription.types';

/** The subscription row if it is due under `condition` (compared with the database's now()), claimed; null when not due or claimed elsewhere. */
async function claim(ctx: RequestContext, condition: string) {
  const [row] = await ctx.tx.query<SubscriptionRow>(
    `SELECT * FROM subscriptions WHERE organization_id = $1 AND ${condition} FOR UPDATE SKIP LOCKED`,
    [ctx.principal.kind === 'system' ? ctx.principal.organizationId : null],
  );
  return row ? subscriptionFromRow(row) : null;
}

async function update(ctx: RequestContext, organizationId: string, set: string, params: unknown[] = []) {
  const [row] = await ctx.tx.query<SubscriptionRow>(`UPDATE subscriptions SET ${set}, updated_at = now() WHERE organization_id = $1 RETURNING *`, [organizationId, ...params]);
  return subscriptionFromRow(row!);
}

/** The trial ended without a chosen plan: FREE/ACTIVE from now (SPEC §5). */
export const trialEndJob: JobKind = {
  kind: 'trial_end',
  dueFunction: 'app_due_trial_end',
  async run(ctx) {
    const before = await claim(ctx, `status = 'TRIALING' AND trial_ends_at <= now()`);
    if (!before) return 0;
    const after = await update(
      ctx,
      before.organizationId,
      `plan_key = 'FREE', status = 'ACTIVE', billing_interval = 'MONTHLY', current_period_start = now(), current_period_end = now() + interval '1 month',
       scheduled_plan_key = NULL, scheduled_billing_interval = NULL`,
    );
    await recordStatusChange(ctx, before, after, { reason: 'trial_ended' });
    return 1;
  },
};

/**
 * The current period ended: a cancelling subscription expires (archived 30 days later); otherwise
 * a scheduled downgrade applies and the next period starts (a plain renewal is not a lifecycle
 * transition and writes no audit event).
 */
export const periodEndJob: JobKind = {
  kind: 'period_end',
  dueFunction: 'app_due_period_end',
  async run(ctx) {
    const before = await claim(ctx, `status IN ('ACTIVE', 'PAST_DUE', 'CANCELLING') AND current_period_end <= now()`);
    if (!before) return 0;
    if (before.status === 'CANCELLING') {
      const after = await update(ctx, before.organizationId, `status = 'EXPIRED', cancel_at_period_end = false, expired_at = now(), archive_at = now() + make_interval(days => $2)`, [
        ARCHIVE_AFTER_DAYS,
      ]);
      await recordStatusChange(ctx, before, after, { reason: 'cancelled_at_period_end' });
      return 1;
    }
    const next = `GREATEST(current_period_end, now())`;
    if (before.scheduledPlanKey) {
      const after = await update(
        ctx,
        before.organizationId,
        `plan_key = scheduled_plan_key, billing_interval = coalesce(scheduled_billing_interval, billing_interval),
         current_period_start = ${next},
         current_period_end = ${next} + CASE WHEN coalesce(scheduled_billing_interval, billing_interval) = 'ANNUAL' THEN interval '1 year' ELSE interval '1 month' END,
         scheduled_plan_key = NULL, scheduled_billing_interval = NULL`,
      );
      await ctx.audit.record({
        organizationId: after.organizationId,
        action: 'subscription.plan_changed',
        resourceType: 'subscription',
        resourceId: after.id,
        changes: { changedFields: ['plan', 'scheduledPlan'], oldValues: { plan: before.planKey, scheduledPlan: before.scheduledPlanKey }, newValues: { plan: after.planKey, scheduledPlan: null } },
        metadata: { reason: 'scheduled_downgrade', plan: after.planKey, previousPlan: before.planKey },
      });
      return 1;
    }
    await update(ctx, before.organizationId, `current_period_start = ${next}, current_period_end = ${next} + ${PERIOD_SQL}`);
    return 1;
  },
};

/** EXPIRED → ARCHIVED 30 days after expiry (SPEC §5). */
export const archiveJob: JobKind = {
  kind: 'archive',
  dueFunction: 'app_due_archive',
  async run(ctx) {
    const before = await claim(ctx, `status = 'EXPIRED' AND archive_at <= now()`);
    if (!before) return 0;
    const after = await update(ctx, before.organizationId, `status = 'ARCHIVED'`);
    await recordStatusChange(ctx, before, after, { reason: 'expired_30_days' });
    return 1;
  },
};

/**
 * PENDING invitations past their expiry become EXPIRED (they already read as EXPIRED through the
 * API, see `effectiveStatus`; the job makes the row say so, which frees their MEMBERS seat in
 * every count that reads the stored status).
 */
export const invitationExpiryJob: JobKind = {
  kind: 'invitation_expiry',
  dueFunction: 'app_due_invitation_expiry',
  async run(ctx) {
    const organizationId = ctx.principal.kind === 'system' ? ctx.principal.organizationId : null;
    const rows = await ctx.tx.query(
      `UPDATE invitations SET status = 'EXPIRED', updated_at = now()
       WHERE organization_id = $1 AND id IN (
         SELECT id FROM invitations WHERE organization_id = $1 AND status = 'PENDING' AND expires_at <= now() FOR UPDATE SKIP LOCKED)
       RETURNING id`,
      [organizationId],
    );
    return rows.length;
  },
};

/** The jobs of this issue, in the order a pass runs them. */
export const BILLING_JOBS: readonly JobKind[] = [trialEndJob, periodEndJob, archiveJob, invitationExpiryJob];
