import { NotificationEmitter, OWNERS } from '../notification/notification.emitter';
import { NotFoundError, PreconditionFailedError } from '../../common/errors';
import type { RequestContext } from '../../context';
import type { SqlQuery } from '../../database/tenant-transaction';
import { QuotaChecker } from '../quota/quota.checker';
import { PlanKey } from './plan.types';
import { BillingInterval, PERIOD_SQL, type Subscription, subscriptionFromRow, type SubscriptionRow, SubscriptionStatus } from './subscription.types';

/** Plans cheapest first: a higher position is an upgrade. */
const ORDER: readonly PlanKey[] = [PlanKey.FREE, PlanKey.STARTER, PlanKey.PRO, PlanKey.BUSINESS, PlanKey.ENTERPRISE];
/** Statuses from which a chosen plan applies at once, with a new period (SPEC §5). */
const RESTARTS: readonly SubscriptionStatus[] = [SubscriptionStatus.TRIALING, SubscriptionStatus.EXPIRED, SubscriptionStatus.ARCHIVED];
/** Statuses a cancellation applies to. */
const CANCELLABLE: readonly SubscriptionStatus[] = [SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE, SubscriptionStatus.SUSPENDED];
/** How long an EXPIRED subscription stays before it is ARCHIVED (SPEC §5). */
export const ARCHIVE_AFTER_DAYS = 30;

const auditView = (s: Subscription) => ({
  plan: s.planKey,
  status: s.status,
  billingInterval: s.billingInterval,
  scheduledPlan: s.scheduledPlanKey,
  cancelAtPeriodEnd: s.cancelAtPeriodEnd,
});
const changesOf = (before: Subscription, after: Subscription) => {
  const a = auditView(before);
  const b = auditView(after);
  const changedFields = (Object.keys(a) as Array<keyof typeof a>).filter((k) => a[k] !== b[k]);
  return {
    changedFields,
    oldValues: Object.fromEntries(changedFields.map((k) => [k, a[k]])),
    newValues: Object.fromEntries(changedFields.map((k) => [k, b[k]])),
  };
};

/** The organization's subscription row, locked for the rest of the transaction (API and jobs serialize on it). */
export async function lockSubscription(query: SqlQuery, organizationId: string, skipLocked = false): Promise<Subscription | null> {
  const [row] = await query<SubscriptionRow>(`SELECT * FROM subscriptions WHERE organization_id = $1 FOR UPDATE${skipLocked ? ' SKIP LOCKED' : ''}`, [organizationId]);
  return row ? subscriptionFromRow(row) : null;
}

async function update(query: SqlQuery, organizationId: string, set: string, params: unknown[] = []): Promise<Subscription> {
  const [row] = await query<SubscriptionRow>(`UPDATE subscriptions SET ${set}, updated_at = now() WHERE organization_id = $1 RETURNING *`, [organizationId, ...params]);
  return subscriptionFromRow(row!);
}

/**
 * A status change of the service itself (a job, the billing webhook), with its audit event
 * `subscription.status_changed` (system actor) in the same transaction.
 */
export async function recordStatusChange(ctx: RequestContext, before: Subscription, after: Subscription, metadata: Record<string, unknown> = {}): Promise<void> {
  await ctx.audit.record({
    organizationId: after.organizationId,
    action: 'subscription.status_changed',
    resourceType: 'subscription',
    resourceId: after.id,
    changes: changesOf(before, after),
    metadata,
  });
  await notifyStatusChange(ctx, before, after, metadata);
}

/** billing.status_changed to the owners (SPEC §5) when the status moved, whoever moved it (a job, the webhook, a billing mutation). */
async function notifyStatusChange(ctx: RequestContext, before: Subscription, after: Subscription, metadata: Record<string, unknown> = {}): Promise<void> {
  if (before.status === after.status) return;
  await new NotificationEmitter(ctx).emit(
    after.organizationId,
    {
      type: 'billing.status_changed',
      title: `Subscription ${after.status.toLowerCase().replace(/_/g, ' ')}`,
      body: `The subscription changed from ${before.status} to ${after.status}.`,
      metadata: { previousStatus: before.status, status: after.status, plan: after.planKey, ...metadata },
    },
    OWNERS,
  );
}

/** Moves a subscription to a status (the webhook's PAST_DUE, SUSPENDED, ACTIVE). */
export function setStatus(query: SqlQuery, organizationId: string, status: SubscriptionStatus): Promise<Subscription> {
  return update(query, organizationId, `status = $2`, [status]);
}

/** Plan changes, cancellation and resumption (SPEC §5, Billing). Permission: the shield rule (org.billing.manage). */
export class SubscriptionService {
  constructor(private readonly ctx: RequestContext) {}

  private async locked(organizationId: string): Promise<Subscription> {
    const subscription = await lockSubscription(this.ctx.tx.query, organizationId);
    if (!subscription) throw new NotFoundError('Subscription');
    return subscription;
  }

  async changePlan(organizationId: string, planKey: PlanKey, billingInterval: BillingInterval | null | undefined): Promise<Subscription> {
    const organization = await this.ctx.access.organization(organizationId);
    return this.ctx.mutate(async () => {
      const query = this.ctx.tx.query;
      // The one quota checker: it takes the organization's lock first (the lock order every
      // quota-consuming mutation follows), so no create slips in before the plan changes.
      const over = await new QuotaChecker(this.ctx).exceeding(organization.id, planKey);
      const current = await this.locked(organization.id);
      if (current.status === SubscriptionStatus.CANCELLING) {
        throw new PreconditionFailedError('SUBSCRIPTION_CANCELLING', 'The subscription is being cancelled: resume it before changing the plan');
      }
      const target = await this.ctx.loaders.planByKey.load(planKey);
      if (!target) throw new NotFoundError('Plan');
      const interval = billingInterval ?? current.billingInterval;
      if (over) throw new PreconditionFailedError('USAGE_EXCEEDS_PLAN', `Current usage of ${over} exceeds the limits of the ${target.name} plan`, { resource: over });
      const restart = RESTARTS.includes(current.status);
      const downgrade = !restart && ORDER.indexOf(planKey) < ORDER.indexOf(current.planKey);
      let next: Subscription;
      if (downgrade) {
        next = await update(query, organization.id, `scheduled_plan_key = $2, scheduled_billing_interval = $3`, [planKey, interval]);
      } else {
        // Upgrades (and any choice from TRIALING, EXPIRED, ARCHIVED) apply at once, with a new period
        // from now; the trial ends now; a pending downgrade is dropped.
        next = await update(
          query,
          organization.id,
          `plan_key = $2, billing_interval = $3, status = CASE WHEN status IN ('TRIALING', 'EXPIRED', 'ARCHIVED') THEN 'ACTIVE' ELSE status END,
           current_period_start = now(), current_period_end = now() + CASE WHEN $3 = 'ANNUAL' THEN interval '1 year' ELSE interval '1 month' END,
           trial_ends_at = CASE WHEN status = 'TRIALING' THEN now() ELSE trial_ends_at END,
           scheduled_plan_key = NULL, scheduled_billing_interval = NULL, cancel_at_period_end = false, cancelled_at = NULL, auto_renew = true,
           expired_at = NULL, archive_at = NULL`,
          [planKey, interval],
        );
      }
      await this.ctx.audit.record({
        organizationId: organization.id,
        action: downgrade ? 'subscription.downgrade_scheduled' : 'subscription.plan_changed',
        resourceType: 'subscription',
        resourceId: next.id,
        changes: changesOf(current, next),
        metadata: downgrade ? { plan: planKey, effectiveAt: next.currentPeriodEnd.toISOString() } : { plan: planKey, previousPlan: current.planKey, previousStatus: current.status },
      });
      await notifyStatusChange(this.ctx, current, next);
      return next;
    });
  }

  async cancel(organizationId: string, atPeriodEnd: boolean): Promise<Subscription> {
    const organization = await this.ctx.access.organization(organizationId);
    return this.ctx.mutate(async () => {
      const query = this.ctx.tx.query;
      const current = await this.locked(organization.id);
      if (!CANCELLABLE.includes(current.status)) {
        throw new PreconditionFailedError('SUBSCRIPTION_NOT_ACTIVE', `A subscription that is ${current.status} cannot be cancelled`);
      }
      const next = atPeriodEnd
        ? await update(query, organization.id, `status = 'CANCELLING', cancel_at_period_end = true, cancelled_at = now(), auto_renew = false, scheduled_plan_key = NULL, scheduled_billing_interval = NULL`)
        : await update(
            query,
            organization.id,
            `status = 'EXPIRED', cancel_at_period_end = false, cancelled_at = now(), auto_renew = false, scheduled_plan_key = NULL, scheduled_billing_interval = NULL,
             expired_at = now(), archive_at = now() + make_interval(days => $2)`,
            [ARCHIVE_AFTER_DAYS],
          );
      await this.ctx.audit.record({
        organizationId: organization.id,
        action: 'subscription.cancelled',
        resourceType: 'subscription',
        resourceId: next.id,
        changes: changesOf(current, next),
        metadata: { atPeriodEnd },
      });
      await notifyStatusChange(this.ctx, current, next);
      return next;
    });
  }

  async resume(organizationId: string): Promise<Subscription> {
    const organization = await this.ctx.access.organization(organizationId);
    return this.ctx.mutate(async () => {
      const query = this.ctx.tx.query;
      const current = await this.locked(organization.id);
      if (current.status !== SubscriptionStatus.CANCELLING) {
        throw new PreconditionFailedError('SUBSCRIPTION_NOT_CANCELLING', 'Only a subscription being cancelled can be resumed');
      }
      // A cancelled trial resumes as a trial while it lasts.
      const next = await update(
        query,
        organization.id,
        `status = CASE WHEN trial_ends_at > now() THEN 'TRIALING' ELSE 'ACTIVE' END, cancel_at_period_end = false, cancelled_at = NULL, auto_renew = true`,
      );
      await this.ctx.audit.record({
        organizationId: organization.id,
        action: 'subscription.resumed',
        resourceType: 'subscription',
        resourceId: next.id,
        changes: changesOf(current, next),
      });
      await notifyStatusChange(this.ctx, current, next);
      return next;
    });
  }
}

export { PERIOD_SQL };
