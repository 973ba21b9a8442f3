import { Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';

export enum PlanKey {
  FREE = 'FREE',
  STARTER = 'STARTER',
  PRO = 'PRO',
  BUSINESS = 'BUSINESS',
  ENTERPRISE = 'ENTERPRISE',
}
registerEnumType(PlanKey, { name: 'PlanKey' });

@ObjectType('PlanLimits', { description: 'Null limits mean unlimited.' })
export class PlanLimits {
  @Field(() => Int, { nullable: true }) maxMembers: number | null;
  @Field(() => Int, { nullable: true }) maxWorkspaces: number | null;
  @Field(() => Int, { nullable: true }) maxEnvironments: number | null;
  @Field(() => Int, { nullable: true }) maxApiKeys: number | null;
  @Field(() => Float, { nullable: true }) maxCpuPerEnvironment: number | null;
  @Field(() => Int, { nullable: true }) maxRamMbPerEnvironment: number | null;
  @Field(() => Int, { nullable: true }) maxDiskGbPerEnvironment: number | null;
  @Field(() => Float, { nullable: true }) totalCpu: number | null;
  @Field(() => Int, { nullable: true }) totalRamMb: number | null;
  @Field(() => Int, { nullable: true }) totalDiskGb: number | null;
  @Field(() => Int, { nullable: true }) auditRetentionDays: number | null;
  @Field(() => Int, { nullable: true }) apiRateLimitPerMinute: number | null;
}

/** A plan of the catalogue (the `plans` table; changed only by migrations). */
@ObjectType('Plan')
export class Plan {
  @Field(() => PlanKey) key: PlanKey;
  @Field() name: string;
  @Field(() => Int, { nullable: true }) monthlyPriceCents: number | null;
  @Field(() => Int, { nullable: true }) annualPriceCents: number | null;
  @Field(() => PlanLimits) limits: PlanLimits;
  @Field(() => [String]) features: string[];
}

/** A `plans` row as PostgreSQL (or PGlite) returns it. */
export interface PlanRow {
  key: PlanKey;
  name: string;
  monthly_price_cents: number | null;
  annual_price_cents: number | null;
  max_members: number | null;
  max_workspaces: number | null;
  max_environments: number | null;
  max_api_keys: number | null;
  max_cpu_per_environment: string | number | null;
  max_ram_mb_per_environment: number | null;
  max_disk_gb_per_environment: number | null;
  total_cpu: string | number | null;
  total_ram_mb: number | null;
  total_disk_gb: number | null;
  audit_retention_days: number | null;
  api_rate_limit_per_minute: number | null;
  features: string[] | string;
}

const num = (value: string | number | null): number | null => (value === null ? null : Number(value));
/** pg returns text[] as an array; PGlite may return the array literal. */
const textArray = (value: string[] | string): string[] => (Array.isArray(value) ? value : value.replace(/^\{|\}$/g, '').split(',').filter(Boolean));

export function planFromRow(row: PlanRow): Plan {
  return Object.assign(new Plan(), {
    key: row.key,
    name: row.name,
    monthlyPriceCents: row.monthly_price_cents,
    annualPriceCents: row.annual_price_cents,
    features: textArray(row.features),
    limits: Object.assign(new PlanLimits(), {
      maxMembers: row.max_members,
      maxWorkspaces: row.max_workspaces,
      maxEnvironments: row.max_environments,
      maxApiKeys: row.max_api_keys,
      maxCpuPerEnvironment: num(row.max_cpu_per_environment),
      maxRamMbPerEnvironment: row.max_ram_mb_per_environment,
      maxDiskGbPerEnvironment: row.max_disk_gb_per_environment,
      totalCpu: num(row.total_cpu),
      totalRamMb: row.total_ram_mb,
      totalDiskGb: row.total_disk_gb,
      auditRetentionDays: row.audit_retention_days,
      apiRateLimitPerMinute: row.api_rate_limit_per_minute,
    }),
  });
}
