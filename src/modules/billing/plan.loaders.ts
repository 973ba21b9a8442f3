import DataLoader from 'dataloader';
import { keyedLoader } from '../../database/loader-helpers';
import type { SqlQuery } from '../../database/tenant-transaction';
import { type Plan, planFromRow, PlanKey, type PlanRow } from './plan.types';

/**
 * The plan a new organization starts on (SPEC §5: the subscription starts TRIALING on PRO).
 * Until billing lands there are no subscriptions, so every organization is on it.
 */
export const TRIAL_PLAN = PlanKey.PRO;

/** Per-request loaders of the plans catalogue and of each organization's current plan. */
export function planLoaders(query: SqlQuery) {
  return {
    /** The whole catalogue, cheapest first (one query per request however often it is asked). */
    allPlans: new DataLoader<'all', Plan[]>(async (keys) => {
      const plans = (await query<PlanRow>(`SELECT * FROM plans ORDER BY position`)).map(planFromRow);
      return keys.map(() => plans);
    }),
    planByKey: keyedLoader<PlanKey, Plan>(async (keys) => (await query<PlanRow>(`SELECT * FROM plans WHERE key = ANY($1::text[])`, [keys])).map(planFromRow), (p) => p.key),
    /**
     * THE one place that decides which plan applies to an organization (its features now, its
     * limits once quotas come). Until billing lands every organization is on the trial plan PRO;
     * the billing issue replaces this loader by one reading the subscription's plan.
     */
    planKeyByOrganization: new DataLoader<string, PlanKey>(async (organizationIds) => organizationIds.map(() => TRIAL_PLAN)),
  };
}
