import { Directive, Field, ID, ObjectType, registerEnumType } from 'type-graphql';
import { PlanKey } from './plan.types';

export enum BillingInterval {
  MONTHLY = 'MONTHLY',
  ANNUAL = 'ANNUAL',
}
export enum SubscriptionStatus {
  TRIALING = 'TRIALING',
  ACTIVE = 'ACTIVE',
  PAST_DUE = 'PAST_DUE',
  SUSPENDED = 'SUSPENDED',
  PAUSED = 'PAUSED',
  CANCELLING = 'CANCELLING',
  EXPIRED = 'EXPIRED',
  ARCHIVED = 'ARCHIVED',
}
registerEnumType(BillingInterval, { name: 'BillingInterval' });
registerEnumType(SubscriptionStatus, { name: 'SubscriptionStatus' });

/** Statuses that make the organization read-only except billing, deletion and member removal (SPEC §5). */
export const READ_ONLY_STATUSES: readonly SubscriptionStatus[] = [SubscriptionStatus.SUSPENDED, SubscriptionStatus.EXPIRED];

/**
 * An organization's subscription (one per organization, the `subscriptions` row). `plan`,
 * `scheduledPlan`, `organization` and `effectiveLimits` are resolved from the keys below.
 */
@Directive('@key(fields: "id")')
@ObjectType('Subscription')
export class Subscription {
  @Field(() => ID) id: string;
  organizationId: string;
  planKey: PlanKey;
  scheduledPlanKey: PlanKey | null;
  scheduledBillingInterval: BillingInterval | null;
  @Field(() => SubscriptionStatus) status: SubscriptionStatus;
  @Field(() => BillingInterval) billingInterval: BillingInterval;
  @Field() currentPeriodStart: Date;
  @Field() currentPeriodEnd: Date;
  @Field(() => Date, { nullable: true }) trialEndsAt: Date | null;
  @Field() cancelAtPeriodEnd: boolean;
  @Field(() => Date, { nullable: true }) cancelledAt: Date | null;
  @Field() autoRenew: boolean;
  expiredAt: Date | null;
  archiveAt: Date | null;
}

export interface SubscriptionRow {
  organization_id: string;
  id: string;
  plan_key: PlanKey;
  status: SubscriptionStatus;
  billing_interval: BillingInterval;
  current_period_start: Date | string;
  current_period_end: Date | string;
  trial_ends_at: Date | string | null;
  scheduled_plan_key: PlanKey | null;
  scheduled_billing_interval: BillingInterval | null;
  cancel_at_period_end: boolean;
  cancelled_at: Date | string | null;
  auto_renew: boolean;
  expired_at: Date | string | null;
  archive_at: Date | string | null;
}

const date = (v: Date | string): Date => (v instanceof Date ? v : new Date(v));
const maybeDate = (v: Date | string | null): Date | null => (v === null ? null : date(v));

export function subscriptionFromRow(row: SubscriptionRow): Subscription {
  return Object.assign(new Subscription(), {
    id: row.id,
    organizationId: row.organization_id,
    planKey: row.plan_key,
    scheduledPlanKey: row.scheduled_plan_key,
    scheduledBillingInterval: row.scheduled_billing_interval,
    status: row.status,
    billingInterval: row.billing_interval,
    currentPeriodStart: date(row.current_period_start),
    currentPeriodEnd: date(row.current_period_end),
    trialEndsAt: maybeDate(row.trial_ends_at),
    cancelAtPeriodEnd: row.cancel_at_period_end,
    cancelledAt: maybeDate(row.cancelled_at),
    autoRenew: row.auto_renew,
    expiredAt: maybeDate(row.expired_at),
    archiveAt: maybeDate(row.archive_at),
  });
}

/** SQL interval of one billing period. */
export const PERIOD_SQL = `CASE WHEN billing_interval = 'ANNUAL' THEN interval '1 year' ELSE interval '1 month' END`;
