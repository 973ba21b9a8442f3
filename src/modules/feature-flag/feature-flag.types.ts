import { Field, ObjectType, registerEnumType } from 'type-graphql';

export enum FeatureFlagSource {
  PLAN = 'PLAN',
  OVERRIDE = 'OVERRIDE',
}
registerEnumType(FeatureFlagSource, { name: 'FeatureFlagSource' });

@ObjectType('FeatureFlag')
export class FeatureFlag {
  @Field() key: string;
  @Field() enabled: boolean;
  @Field(() => String, { nullable: true }) description: string | null;
  @Field(() => FeatureFlagSource) source: FeatureFlagSource;
}

/** The features the plans grant, with what they unlock (other keys are set by overrides, for other services). */
export const PLAN_FEATURE_DESCRIPTIONS: Readonly<Record<string, string>> = {
  audit_log_export: 'Export the audit trail (NDJSON, CSV)',
  custom_roles: 'Create custom organization roles',
  restricted_workspaces: 'Make workspaces RESTRICTED: seen only by owners, admins and users granted a workspace role',
  ip_allowlist: "Restrict access to the organization's IP allowlist",
};

/** SPEC §5: feature flag keys. */
export const FEATURE_KEY_PATTERN = /^[a-z][a-z0-9_.-]{1,63}$/;

/** A stored override: what an organization switched on or off whatever its plan says. */
export interface FeatureOverride {
  organizationId: string;
  key: string;
  enabled: boolean;
}

/**
 * An organization's flags: its plan's features (enabled, source PLAN) with its overrides laid
 * over them (source OVERRIDE, whether they switch a feature on or off, known to a plan or not), by key.
 */
export function effectiveFlags(planFeatures: readonly string[], overrides: readonly FeatureOverride[]): FeatureFlag[] {
  const flags = new Map<string, FeatureFlag>();
  const flag = (key: string, enabled: boolean, source: FeatureFlagSource) =>
    Object.assign(new FeatureFlag(), { key, enabled, source, description: PLAN_FEATURE_DESCRIPTIONS[key] ?? null });
  for (const key of planFeatures) flags.set(key, flag(key, true, FeatureFlagSource.PLAN));
  for (const o of overrides) flags.set(o.key, flag(o.key, o.enabled, FeatureFlagSource.OVERRIDE));
  return [...flags.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
