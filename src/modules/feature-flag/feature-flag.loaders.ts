import DataLoader from 'dataloader';
import { groupedLoader, oneOf } from '../../database/loader-helpers';
import type { SqlQuery } from '../../database/tenant-transaction';
import type { planLoaders } from '../billing/plan.loaders';
import { effectiveFlags, type FeatureFlag, type FeatureOverride } from './feature-flag.types';

/**
 * Per-request loaders of feature flags: the overrides of many organizations in one query, and
 * each organization's effective flags (its current plan's features ∪ its overrides).
 */
export function featureFlagLoaders(query: SqlQuery, plans: ReturnType<typeof planLoaders>) {
  const featureOverridesByOrganization = groupedLoader<string, FeatureOverride>(
    (organizationIds) => {
      const k = oneOf('organization_id', 1, organizationIds);
      return query<FeatureOverride>(
        `SELECT organization_id AS "organizationId", key, enabled FROM feature_flag_overrides WHERE ${k.sql} ORDER BY organization_id, key`,
        [k.param],
      );
    },
    (o) => o.organizationId,
  );
  return {
    featureOverridesByOrganization,
    featureFlagsByOrganization: new DataLoader<string, FeatureFlag[]>(async (organizationIds) => {
      const planKeys = await plans.planKeyByOrganization.loadMany(organizationIds);
      return Promise.all(
        organizationIds.map(async (id, i) => {
          const planKey = planKeys[i];
          if (planKey instanceof Error) throw planKey;
          const [plan, overrides] = await Promise.all([plans.planByKey.load(planKey!), featureOverridesByOrganization.load(id)]);
          return effectiveFlags(plan?.features ?? [], overrides);
        }),
      );
    }),
  };
}
