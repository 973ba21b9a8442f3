import { readAll } from '../../helpers/db';
import type { TestApp } from '../../helpers/app';

export const SUBSCRIPTION = `id status billingInterval currentPeriodStart currentPeriodEnd trialEndsAt cancelAtPeriodEnd cancelledAt autoRenew
  plan { key monthlyPriceCents annualPriceCents } scheduledPlan { key } effectiveLimits { maxMembers maxWorkspaces } organization { id }`;

export const ORG_BILLING = `query($id: ID!) { organization(id: $id) { id status isActive subscription { ${SUBSCRIPTION} } } }`;
export const CHANGE_PLAN = `mutation($org: ID!, $plan: PlanKey!, $interval: BillingInterval) { changePlan(organizationId: $org, plan: $plan, billingInterval: $interval) { ${SUBSCRIPTION} } }`;
export const CANCEL = `mutation($org: ID!, $atPeriodEnd: Boolean) { cancelSubscription(organizationId: $org, atPeriodEnd: $atPeriodEnd) { ${SUBSCRIPTION} } }`;
export const RESUME = `mutation($org: ID!) { resumeSubscription(organizationId: $org) { ${SUBSCRIPTION} } }`;

export interface SubscriptionAuditRow {
  action: string;
  actor_type: string;
  actor_name: string | null;
  changes: { changedFields: string[]; oldValues: Record<string, unknown>; newValues: Record<string, unknown> } | null;
  metadata: Record<string, unknown> | null;
}

/** The organization's subscription.* audit events, oldest first (read on a connection that sees every row). */
export const subscriptionEvents = (app: { db: TestApp['db'] }, organizationId: string): Promise<SubscriptionAuditRow[]> =>
  readAll<SubscriptionAuditRow>(
    app,
    `SELECT action, actor_type, actor_name, changes, metadata FROM audit_events WHERE organization_id = $1 AND action LIKE 'subscription.%' ORDER BY occurred_at, id`,
    [organizationId],
  );

/** The stored subscription row. */
export const subscriptionRow = async (app: { db: TestApp['db'] }, organizationId: string): Promise<Record<string, any>> =>
  (await readAll(app, `SELECT * FROM subscriptions WHERE organization_id = $1`, [organizationId]))[0]!;

/** Sets columns of the subscription row as an operator would (e.g. a due time into the past). */
export const setSubscription = (app: { db: TestApp['db'] }, organizationId: string, set: string): Promise<unknown> =>
  readAll(app, `UPDATE subscriptions SET ${set} WHERE organization_id = $1`, [organizationId]);
