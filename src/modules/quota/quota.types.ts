import { Field, Float, ObjectType, registerEnumType } from 'type-graphql';

/** The resources a plan limits (contract: `QuotaResource`). */
export enum QuotaResource {
  MEMBERS = 'MEMBERS',
  WORKSPACES = 'WORKSPACES',
  ENVIRONMENTS = 'ENVIRONMENTS',
  API_KEYS = 'API_KEYS',
  CPU = 'CPU',
  RAM_MB = 'RAM_MB',
  DISK_GB = 'DISK_GB',
}
registerEnumType(QuotaResource, { name: 'QuotaResource' });

/** SPEC §5: OK < 80 % ≤ WARNING < 95 % ≤ ALERT < 100 % ≤ BLOCKED. */
export enum QuotaLevel {
  OK = 'OK',
  WARNING = 'WARNING',
  ALERT = 'ALERT',
  BLOCKED = 'BLOCKED',
}
registerEnumType(QuotaLevel, { name: 'QuotaLevel' });

@ObjectType('QuotaUsage')
export class QuotaUsage {
  @Field(() => QuotaResource) resource: QuotaResource;
  @Field(() => Float) used: number;
  @Field(() => Float, { nullable: true, description: 'Null: unlimited.' }) limit: number | null;
  @Field(() => Float, { nullable: true, description: 'used / limit (1 = the whole limit); null when unlimited.' }) utilization: number | null;
  @Field(() => QuotaLevel) level: QuotaLevel;
}

@ObjectType('Quota')
export class Quota {
  @Field(() => [QuotaUsage]) resources: QuotaUsage[];
}
