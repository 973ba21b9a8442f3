import { BadUserInputError } from '../../common/errors';
import type { RequestContext } from '../../context';
import { diffChanges, NO_CHANGES } from '../audit/audit.writer';
import { FEATURE_KEY_PATTERN, type FeatureFlag, FeatureFlagSource, PLAN_FEATURE_DESCRIPTIONS } from './feature-flag.types';

/**
 * Feature flag overrides (SPEC §5). Callers have passed the shield rule (`org.features.manage`
 * on the organization: NOT_FOUND, then FORBIDDEN); this validates the key, writes and audits.
 */
export class FeatureFlagService {
  constructor(private readonly ctx: RequestContext) {}

  /**
   * Sets an override: it wins over the plan whether it switches the feature on or off, and any
   * key of the pattern may be set (other services of the federation read their own flags).
   * Setting the value the flag already has still succeeds and is audited (with empty `changes`
   * when nothing changed), like every successful mutation: the flag then stays an override.
   */
  async set(organizationId: string, key: string, enabled: boolean): Promise<FeatureFlag> {
    const organization = await this.ctx.access.organization(organizationId);
    const actingUserId = await this.ctx.access.actingUserId();
    if (typeof key !== 'string' || !FEATURE_KEY_PATTERN.test(key)) {
      throw new BadUserInputError('key', 'key must match ^[a-z][a-z0-9_.-]{1,63}$ (lowercase letters, digits, _ . -; 2 to 64 characters)');
    }

    return this.ctx.mutate(async () => {
      const query = this.ctx.tx.query;
      const before = (await this.ctx.loaders.featureFlagsByOrganization.load(organization.id)).find((f) => f.key === key) ?? null;
      // First the insert (it waits for a concurrent first insert of the same key, then does
      // nothing); otherwise the existing row, locked, so the audited old value is the one replaced.
      const [inserted] = await query(
        `INSERT INTO feature_flag_overrides (organization_id, key, enabled, updated_by) VALUES ($1, $2, $3, $4)
         ON CONFLICT (organization_id, key) DO NOTHING RETURNING enabled`,
        [organization.id, key, enabled, actingUserId],
      );
      let previousOverride: boolean | null = null;
      if (!inserted) {
        const [locked] = await query<{ enabled: boolean }>(`SELECT enabled FROM feature_flag_overrides WHERE organization_id = $1 AND key = $2 FOR UPDATE`, [
          organization.id,
          key,
        ]);
        previousOverride = locked?.enabled ?? null;
        await query(
          `UPDATE feature_flag_overrides SET enabled = $3, updated_by = $4,
             updated_at = CASE WHEN enabled IS DISTINCT FROM $3 THEN now() ELSE updated_at END
           WHERE organization_id = $1 AND key = $2`,
          [organization.id, key, enabled, actingUserId],
        );
      }
      // What the flag was: the override replaced if any, else what the plan said (off when it does not name it).
      const old =
        previousOverride !== null
          ? { enabled: previousOverride, source: FeatureFlagSource.OVERRIDE }
          : { enabled: before?.source === FeatureFlagSource.PLAN, source: before?.source === FeatureFlagSource.PLAN ? FeatureFlagSource.PLAN : null };
      const flag: FeatureFlag = { key, enabled, source: FeatureFlagSource.OVERRIDE, description: PLAN_FEATURE_DESCRIPTIONS[key] ?? null };
      await this.ctx.audit.record({
        organizationId: organization.id,
        action: 'feature.toggled',
        resourceType: 'feature_flag',
        resourceId: key,
        resourceName: key,
        changes: diffChanges(old, { enabled, source: FeatureFlagSource.OVERRIDE }, ['enabled', 'source']) ?? NO_CHANGES,
        metadata: { key, enabled, previousEnabled: old.enabled, previousSource: old.source },
      });
      return flag;
    });
  }
}
