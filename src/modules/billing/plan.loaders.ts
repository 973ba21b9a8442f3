import DataLoader from 'dataloader';
import { keyedLoader, oneOf } from '../../database/loader-helpers';
import type { SqlQuery } from '../../database/tenant-transaction';
import { type Plan, planFromRow, PlanKey, type PlanRow } from './plan.types';
import { type Subscription, subscriptionFromRow, type SubscriptionRow } from './subscription.types';

/** The plan a new organization starts on (SPEC §5: the subscription starts TRIALING on PRO). */
export const TRIAL_PLAN = PlanKey.PRO;

/** Per-request loaders of the plans catalogue and of each organization's current plan. */
export function planLoaders(query: SqlQuery) {
  return {
    /** The whole catalogue, cheapest first (one query per request however often it is asked). */
    allPlans: new DataLoader<'all', Plan[]>(async (keys) => {
      const plans = (await query<PlanRow>(`SELECT * FROM plans ORDER BY position`)).map(planFromRow);
      return keys.map(() => plans);
    }),
    planByKey: keyedLoader<PlanKey, Plan>(async (keys) => {
      const k = oneOf('key', 1, keys, 'text');
      return (await query<PlanRow>(`SELECT * FROM plans WHERE ${k.sql}`, [k.param])).map(planFromRow);
    }, (p) => p.key),
    /** Each organization's subscription (one per organization), as row-level security lets the principal see it. */
    subscriptionByOrganization: keyedLoader<string, Subscription>(
      async (ids) => {
        const k = oneOf('organization_id', 1, ids);
        return (await query<SubscriptionRow>(`SELECT * FROM subscriptions WHERE ${k.sql}`, [k.param])).map(subscriptionFromRow);
      },
      (s) => s.organizationId,
    ),
    subscriptionById: keyedLoader<string, Subscription>(
      async (ids) => {
        const k = oneOf('id', 1, ids);
        return (await query<SubscriptionRow>(`SELECT * FROM subscriptions WHERE ${k.sql}`, [k.param])).map(subscriptionFromRow);
      },
      (s) => s.id,
    ),
    /**
     * THE one place that decides which plan applies to an organization (its features and its
     * limits): the plan of its subscription (TRIALING organizations are on PRO). An organization
     * without a visible subscription is on FREE.
     */
    planKeyByOrganization: new DataLoader<string, PlanKey>(async (organizationIds) => {
      const k = oneOf('organization_id', 1, organizationIds);
      const rows = await query<{ organization_id: string; plan_key: PlanKey }>(`SELECT organization_id, plan_key FROM subscriptions WHERE ${k.sql}`, [k.param]);
      const byId = new Map(rows.map((r) => [r.organization_id, r.plan_key]));
      return organizationIds.map((id) => byId.get(id) ?? PlanKey.FREE);
    }),
  };
}
