import type { SqlQuery } from '../../database/tenant-transaction';
import { TRIAL_PLAN } from './plan.loaders';
import { PlanKey } from './plan.types';

/**
 * The subscription a new organization starts with, in the transaction that creates it (SPEC §5):
 * TRIALING on PRO for `trialDays` (the trial is the first period), or FREE/ACTIVE for a month at
 * once when `trialDays` is 0.
 */
export async function insertInitialSubscription(query: SqlQuery, organizationId: string, trialDays: number): Promise<void> {
  if (trialDays > 0) {
    await query(
      `INSERT INTO subscriptions (organization_id, plan_key, status, current_period_start, current_period_end, trial_ends_at)
       VALUES ($1, $2, 'TRIALING', now(), now() + make_interval(days => $3), now() + make_interval(days => $3))`,
      [organizationId, TRIAL_PLAN, trialDays],
    );
  } else {
    await query(
      `INSERT INTO subscriptions (organization_id, plan_key, status, current_period_start, current_period_end)
       VALUES ($1, $2, 'ACTIVE', now(), now() + interval '1 month')`,
      [organizationId, PlanKey.FREE],
    );
  }
}
