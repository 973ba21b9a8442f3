import { NotFoundError, OrganizationInactiveError, QuotaExceededError } from '../../common/errors';
import type { RequestContext } from '../../context';
import type { SqlQuery } from '../../database/tenant-transaction';
import type { PlanKey, PlanLimits } from '../billing/plan.types';
import { lockOrganizationRow } from '../membership/membership.lock';
import { OrganizationStatus } from '../organization/organization.types';
import { QuotaLevel, QuotaResource, QuotaUsage } from './quota.types';
import { NotificationEmitter, OWNERS_AND_ADMINS } from '../notification/notification.emitter';

/** Every resource, in the order they are checked and listed. */
export const QUOTA_RESOURCES: readonly QuotaResource[] = [
  QuotaResource.MEMBERS,
  QuotaResource.WORKSPACES,
  QuotaResource.ENVIRONMENTS,
  QuotaResource.API_KEYS,
  QuotaResource.CPU,
  QuotaResource.RAM_MB,
  QuotaResource.DISK_GB,
];

const TOTAL_LIMIT: Record<QuotaResource, keyof PlanLimits> = {
  MEMBERS: 'maxMembers',
  WORKSPACES: 'maxWorkspaces',
  ENVIRONMENTS: 'maxEnvironments',
  API_KEYS: 'maxApiKeys',
  CPU: 'totalCpu',
  RAM_MB: 'totalRamMb',
  DISK_GB: 'totalDiskGb',
};

/** The resources one environment holds, and the plan's limit of each per environment. */
export const ENVIRONMENT_RESOURCES = [
  { resource: QuotaResource.CPU, key: 'cpu', perEnvironment: 'maxCpuPerEnvironment' },
  { resource: QuotaResource.RAM_MB, key: 'ramMb', perEnvironment: 'maxRamMbPerEnvironment' },
  { resource: QuotaResource.DISK_GB, key: 'diskGb', perEnvironment: 'maxDiskGbPerEnvironment' },
] as const;

export interface EnvironmentResources {
  cpu: number;
  ramMb: number;
  diskGb: number;
}

/** How much of each resource a create (or a growing update) adds. */
export type QuotaDemand = Partial<Record<QuotaResource, number>>;

/**
 * CPU is a decimal (numeric(10,3)): every comparison is made in thousandths, as integers, so that
 * 0.1 + 0.2 is exactly 0.3 of a limit. Other resources are whole numbers already.
 */
const SCALE: Record<QuotaResource, number> = { MEMBERS: 1, WORKSPACES: 1, ENVIRONMENTS: 1, API_KEYS: 1, CPU: 1000, RAM_MB: 1, DISK_GB: 1 };
const scaled = (resource: QuotaResource, value: number): number => Math.round(value * SCALE[resource]);
const unscaled = (resource: QuotaResource, value: number): number => value / SCALE[resource];

/**
 * SPEC §5: OK < 80 % ≤ WARNING < 95 % ≤ ALERT < 100 % ≤ BLOCKED; unlimited is always OK. Compared
 * as integers (used × 100 against limit × percent), never as a rounded ratio.
 */
export function quotaLevel(resource: QuotaResource, used: number, limit: number | null): QuotaLevel {
  if (limit === null) return QuotaLevel.OK;
  const u = scaled(resource, used) * 100;
  const l = scaled(resource, limit);
  if (u >= l * 100) return QuotaLevel.BLOCKED;
  if (u >= l * 95) return QuotaLevel.ALERT;
  if (u >= l * 80) return QuotaLevel.WARNING;
  return QuotaLevel.OK;
}

/** The thresholds that raise an event when crossed upwards (SPEC §5), with their notification type. */
const THRESHOLDS = [
  { percent: 80, level: QuotaLevel.WARNING, notification: 'quota.warning' },
  { percent: 100, level: QuotaLevel.BLOCKED, notification: 'quota.blocked' },
] as const;

/** Current usage of each resource, in the resource's own unit. */
export type QuotaUsageValues = Record<QuotaResource, number>;

interface UsageRow {
  members: string | number;
  workspaces: string | number;
  environments: string | number;
  api_keys: string | number;
  cpu: string | number;
  ram_mb: string | number;
  disk_gb: string | number;
  max_cpu: string | number;
  max_ram_mb: string | number;
  max_disk_gb: string | number;
}

/**
 * What counts (one statement, one snapshot):
 * - MEMBERS: memberships plus PENDING invitations that have not expired (a pending invitation
 *   holds its seat until it is accepted, declined, revoked or expires);
 * - WORKSPACES: every workspace, the default one included;
 * - ENVIRONMENTS, CPU, RAM_MB, DISK_GB: active environments only (a destroyed one holds nothing);
 * - API_KEYS: active keys (neither revoked nor expired); `createApiKey` calls `admit` with `{ API_KEYS: 1 }`.
 */
export const API_KEYS_USED = `SELECT count(*) FROM api_keys WHERE organization_id = $1 AND revoked_at IS NULL AND expires_at > now()`;
const USAGE_SQL = `
  SELECT
    (SELECT count(*) FROM memberships WHERE organization_id = $1)
      + (SELECT count(*) FROM invitations WHERE organization_id = $1 AND status = 'PENDING' AND expires_at > now()) AS members,
    (SELECT count(*) FROM workspaces WHERE organization_id = $1) AS workspaces,
    e.environments, e.cpu, e.ram_mb, e.disk_gb, e.max_cpu, e.max_ram_mb, e.max_disk_gb,
    (${API_KEYS_USED}) AS api_keys
  FROM (
    SELECT count(*) AS environments, coalesce(sum(cpu), 0) AS cpu, coalesce(sum(ram_mb), 0) AS ram_mb, coalesce(sum(disk_gb), 0) AS disk_gb,
           coalesce(max(cpu), 0) AS max_cpu, coalesce(max(ram_mb), 0) AS max_ram_mb, coalesce(max(disk_gb), 0) AS max_disk_gb
    FROM environments WHERE organization_id = $1 AND is_active
  ) e`;

async function readUsage(query: SqlQuery, organizationId: string): Promise<{ used: QuotaUsageValues; largest: EnvironmentResources }> {
  const [row] = await query<UsageRow>(USAGE_SQL, [organizationId]);
  const n = (value: string | number | undefined) => Number(value ?? 0);
  return {
    used: {
      MEMBERS: n(row?.members),
      WORKSPACES: n(row?.workspaces),
      ENVIRONMENTS: n(row?.environments),
      API_KEYS: n(row?.api_keys),
      CPU: n(row?.cpu),
      RAM_MB: n(row?.ram_mb),
      DISK_GB: n(row?.disk_gb),
    },
    largest: { cpu: n(row?.max_cpu), ramMb: n(row?.max_ram_mb), diskGb: n(row?.max_disk_gb) },
  };
}

/** The `QUOTA_EXCEEDED` of a per-environment limit: `used` is what the environment asked for. */
function perEnvironmentExceeded(resource: QuotaResource, requested: number, limit: number): QuotaExceededError {
  return new QuotaExceededError(resource, requested, limit, { scope: 'ENVIRONMENT' });
}

/**
 * THE quota checker (SPEC §5, Quotas): every create that consumes a resource goes through
 * `admit`, and `Organization.quota` and plan changes read the same counts.
 *
 * Exact under concurrency: `admit` first takes the organization's row lock — the very lock of
 * the membership (src/modules/membership/membership.lock.ts, `FOR NO KEY UPDATE` on the
 * organization row) — and counts under it, in the same transaction as the insert that follows.
 * Creates of one organization therefore queue one behind the other in the database (several
 * instances share it), each counting what the previous ones committed (READ COMMITTED: each
 * statement after the lock is granted sees every commit before it). N creates against room for
 * k: exactly k pass.
 *
 * Lock order (documented in the README, "Quotas"): the organization row is always the FIRST lock
 * a quota-consuming mutation takes — before the invitation advisory lock, the slug advisory lock,
 * the environment row (updateEnvironment) and the foreign-key key-share locks of the insert.
 * Nothing that holds a workspace, environment or membership row lock waits for the organization
 * row in a conflicting mode (audit inserts and foreign-key checks take `FOR KEY SHARE`, which
 * `FOR NO KEY UPDATE` does not block), so no cycle — no deadlock — can form.
 */
export class QuotaChecker {
  constructor(private readonly ctx: RequestContext) {}

  /** The per-organization lock (a no-op when this transaction holds it already). NOT_FOUND names `kind`. */
  async lock(organizationId: string, kind = 'Organization'): Promise<void> {
    const status = await lockOrganizationRow(this.ctx.tx.query, organizationId);
    if (!status) throw new NotFoundError(kind);
    // A create that waited for a concurrent deleteOrganization sees it here (the read-only check of
    // ctx.mutate ran before the lock): a deleted organization gets nothing new.
    if (status === OrganizationStatus.DELETED) throw new OrganizationInactiveError(OrganizationStatus.DELETED);
  }

  /** The limits of the organization's plan now (the loader is re-read: the plan may have changed since the request began). */
  async limits(organizationId: string, planKey?: PlanKey): Promise<PlanLimits> {
    if (!planKey) this.ctx.loaders.planKeyByOrganization.clear(organizationId);
    const key = planKey ?? (await this.ctx.loaders.planKeyByOrganization.load(organizationId));
    const plan = await this.ctx.loaders.planByKey.load(key);
    if (!plan) throw new Error(`Unknown plan ${key}`);
    return plan.limits;
  }

  /** `Organization.quota`: used, limit, utilization and level of every resource (no lock: a read). */
  async usage(organizationId: string): Promise<QuotaUsage[]> {
    const [limits, { used }] = await Promise.all([this.limits(organizationId), readUsage(this.ctx.tx.query, organizationId)]);
    return QUOTA_RESOURCES.map((resource) => {
      const limit = limits[TOTAL_LIMIT[resource]];
      return Object.assign(new QuotaUsage(), {
        resource,
        used: used[resource],
        limit,
        utilization: limit === null ? null : limit === 0 ? (used[resource] > 0 ? used[resource] : 1) : used[resource] / limit,
        level: quotaLevel(resource, used[resource], limit),
      });
    });
  }

  /**
   * Admits a create (or a growing update) that adds `demand`, or throws QUOTA_EXCEEDED
   * (`extensions.resource`, `used`, `limit`) and changes nothing. Takes the organization lock
   * itself, so the caller's insert (in the same transaction, after this) is counted by the next
   * create. `environment` are the resources an environment will have after the change: each
   * grown one is checked against the plan's per-environment limit (`extensions.scope:
   * 'ENVIRONMENT'`, `used` = the value asked for); totals carry `scope: 'ORGANIZATION'`.
   *
   * Order of checks (the first failing one answers): counts (members, workspaces, environments,
   * API keys), per-environment cpu/ram/disk, then totals cpu/ram/disk. Once admitted, every
   * threshold (80 %, 100 %) the demand crosses upwards writes one `quota.threshold_crossed`
   * audit event and one notification event, in this transaction.
   */
  async admit(organizationId: string, demand: QuotaDemand, environment?: { next: EnvironmentResources; grown: ReadonlySet<keyof EnvironmentResources> }): Promise<void> {
    await this.lock(organizationId);
    const limits = await this.limits(organizationId);
    const { used } = await readUsage(this.ctx.tx.query, organizationId);
    const wanted = QUOTA_RESOURCES.filter((r) => (demand[r] ?? 0) > 0);
    const counts = wanted.filter((r) => SCALE[r] === 1 && !ENVIRONMENT_RESOURCES.some((e) => e.resource === r));
    const totals = wanted.filter((r) => !counts.includes(r));
    const exceeds = (r: QuotaResource) => {
      const limit = limits[TOTAL_LIMIT[r]];
      return limit !== null && scaled(r, used[r]) + scaled(r, demand[r]!) > scaled(r, limit);
    };
    for (const r of counts) if (exceeds(r)) throw new QuotaExceededError(r, used[r], limits[TOTAL_LIMIT[r]]!, { scope: 'ORGANIZATION' });
    if (environment) {
      for (const { resource, key, perEnvironment } of ENVIRONMENT_RESOURCES) {
        const limit = limits[perEnvironment];
        if (limit !== null && environment.grown.has(key) && scaled(resource, environment.next[key]) > scaled(resource, limit)) {
          throw perEnvironmentExceeded(resource, environment.next[key], limit);
        }
      }
    }
    for (const r of totals) if (exceeds(r)) throw new QuotaExceededError(r, used[r], limits[TOTAL_LIMIT[r]]!, { scope: 'ORGANIZATION', requested: demand[r] });
    for (const r of wanted) await this.recordCrossings(organizationId, r, used[r], unscaled(r, scaled(r, used[r]) + scaled(r, demand[r]!)), limits[TOTAL_LIMIT[r]]);
  }

  /**
   * The first resource whose current usage exceeds `planKey` (totals, then the largest active
   * environment against the per-environment limits), or null when the organization fits. Takes
   * the organization lock, so no create can slip in between this check and the caller's plan
   * change in the same transaction. For `changePlan` (USAGE_EXCEEDS_PLAN, `extensions.resource`).
   */
  async exceeding(organizationId: string, planKey: PlanKey): Promise<QuotaResource | null> {
    await this.lock(organizationId);
    const limits = await this.limits(organizationId, planKey);
    const { used, largest } = await readUsage(this.ctx.tx.query, organizationId);
    for (const r of QUOTA_RESOURCES) {
      const limit = limits[TOTAL_LIMIT[r]];
      if (limit !== null && scaled(r, used[r]) > scaled(r, limit)) return r;
    }
    for (const { resource, key, perEnvironment } of ENVIRONMENT_RESOURCES) {
      const limit = limits[perEnvironment];
      if (limit !== null && scaled(resource, largest[key]) > scaled(resource, limit)) return resource;
    }
    return null;
  }

  /** One audit event and one notification (quota.warning / quota.blocked to owners and admins) per threshold crossed upwards from `before` to `after`. */
  private async recordCrossings(organizationId: string, resource: QuotaResource, before: number, after: number, limit: number | null): Promise<void> {
    if (limit === null) return;
    for (const { percent, level, notification } of THRESHOLDS) {
      const bound = scaled(resource, limit) * percent;
      if (scaled(resource, before) * 100 >= bound || scaled(resource, after) * 100 < bound) continue;
      const details = { resource, level, threshold: percent, used: after, limit };
      await this.ctx.audit.record({
        organizationId,
        action: 'quota.threshold_crossed',
        resourceType: 'quota',
        resourceName: resource,
        metadata: details,
      });
      // Routed to owners and admins by the one emitter, in this transaction (recorded in notification_events).
      await new NotificationEmitter(this.ctx).emit(
        organizationId,
        {
          type: notification,
          title: level === QuotaLevel.BLOCKED ? `${resource} quota reached (${after} of ${limit})` : `${resource} quota at ${percent} % (${after} of ${limit})`,
          body: level === QuotaLevel.BLOCKED ? `No more ${resource} can be added on the current plan.` : `${resource} usage has crossed ${percent} % of the plan's limit.`,
          metadata: details,
        },
        OWNERS_AND_ADMINS,
      );
    }
  }
}
