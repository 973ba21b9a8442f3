import { randomUUID } from 'node:crypto';
import { BadUserInputError, NotFoundError, pgError, PreconditionFailedError } from '../../common/errors';
import { assertExplicitSlug, insertWithSlug } from '../../common/slug';
import { jsonObject, optionalText, requiredName } from '../../common/validation';
import type { RequestContext } from '../../context';
import { diffChanges, NO_CHANGES } from '../audit/audit.writer';
import { QuotaChecker } from '../quota/quota.checker';
import { QuotaResource } from '../quota/quota.types';
import { ENVIRONMENT_COLUMNS, environmentHydrator } from './environment.loaders';
import { DeploymentHost, Environment, EnvironmentTier } from './environment.entity';
import type { CreateEnvironmentInput, EnvironmentResourcesInput, UpdateEnvironmentInput } from './environment.inputs';

export interface ResourceValues {
  cpu: number;
  ramMb: number;
  diskGb: number;
}

/** Lower bounds from SPEC §5; upper bounds only keep absurd values out (plan limits are checked elsewhere). */
export const RESOURCE_BOUNDS = {
  cpu: { min: 0.1, max: 1024 },
  ramMb: { min: 64, max: 4_194_304 },
  diskGb: { min: 1, max: 1_048_576 },
} as const;

export const CLOUD_CREDENTIALS_MAX_BYTES = 64 * 1024;
const EXECUTION_BACKEND_MAX = 100;

/** Validates the resources of an environment; cpu is rounded to the column's 3 decimals. */
export function validateResources(resources: EnvironmentResourcesInput | null | undefined): ResourceValues {
  if (resources === null || resources === undefined || typeof resources !== 'object') {
    throw new BadUserInputError('resources', 'resources must give cpu, ramMb and diskGb');
  }
  const { cpu, ramMb, diskGb } = resources;
  if (typeof cpu !== 'number' || !Number.isFinite(cpu) || cpu < RESOURCE_BOUNDS.cpu.min || cpu > RESOURCE_BOUNDS.cpu.max) {
    throw new BadUserInputError('resources.cpu', `resources.cpu must be from ${RESOURCE_BOUNDS.cpu.min} to ${RESOURCE_BOUNDS.cpu.max}`);
  }
  for (const [field, value] of [['ramMb', ramMb], ['diskGb', diskGb]] as const) {
    const { min, max } = RESOURCE_BOUNDS[field];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new BadUserInputError(`resources.${field}`, `resources.${field} must be a whole number from ${min} to ${max}`);
    }
  }
  return { cpu: Math.round(cpu * 1000) / 1000, ramMb, diskGb };
}

function enumValue<E extends string>(values: Record<string, E>, value: E | null | undefined, field: string): E {
  const allowed = Object.values(values);
  if (!allowed.includes(value as E)) throw new BadUserInputError(field, `${field} must be one of ${allowed.join(', ')}`);
  return value as E;
}

const conflictMessage = (slug: string) => `Environment with slug '${slug}' already exists`;
const AUDITED_FIELDS = ['name', 'tier', 'deploymentHost', 'executionBackend', 'resources.cpu', 'resources.ramMb', 'resources.diskGb', 'cloudCredentials'];
const purpose = (id: string) => `environment:${id}:cloudCredentials`;

/** A non-empty JSON object (an empty one would report hasCloudCredentials while holding none). */
function credentialsObject(value: unknown): Record<string, unknown> {
  const object = jsonObject(value, 'cloudCredentials', CLOUD_CREDENTIALS_MAX_BYTES);
  if (Object.keys(object).length === 0) throw new BadUserInputError('cloudCredentials', 'cloudCredentials must not be empty; pass null to remove them');
  return object;
}

/**
 * Credentials appear in the audit view only as a marker (passed redacted to diffChanges, so even
 * the marker becomes `[redacted]`): a distinct marker for replaced ones records a replacement.
 */
type CredentialsMarker = 'stored' | 'replaced' | null;

const auditView = (e: Environment, credentials: CredentialsMarker): Record<string, unknown> => ({
  name: e.name,
  tier: e.tier,
  deploymentHost: e.deploymentHost,
  executionBackend: e.executionBackend,
  'resources.cpu': e.cpu,
  'resources.ramMb': e.ramMb,
  'resources.diskGb': e.diskGb,
  cloudCredentials: credentials,
});

const destroyedError = () => new PreconditionFailedError('ENVIRONMENT_DESTROYED', 'The environment has been destroyed');

/** Environment lifecycle: create, update, destroy. Callers have passed the shield rules (the one permission check). */
export class EnvironmentService {
  private readonly toEnvironment;

  constructor(private readonly ctx: RequestContext) {
    this.toEnvironment = environmentHydrator(ctx.app.db.dataSource);
  }

  /** Slug unique among the workspace's active environments; credentials sealed before they are stored. */
  async create(workspaceId: string, input: CreateEnvironmentInput): Promise<Environment> {
    const workspace = await this.ctx.access.workspace(workspaceId);
    const actingUserId = await this.ctx.access.actingUserId();
    const name = requiredName(input.name);
    if (input.slug !== undefined && input.slug !== null) assertExplicitSlug(input.slug);
    const tier = enumValue(EnvironmentTier, input.tier, 'tier');
    const deploymentHost = enumValue(DeploymentHost, input.deploymentHost ?? DeploymentHost.LOCALHOST, 'deploymentHost');
    const executionBackend = optionalText(input.executionBackend, 'executionBackend', EXECUTION_BACKEND_MAX);
    const resources = validateResources(input.resources);
    const credentials =
      input.cloudCredentials === undefined || input.cloudCredentials === null
        ? null
        : credentialsObject(input.cloudCredentials);
    const { organizationId } = workspace;

    return this.ctx.mutate(async () => {
      const query = this.ctx.tx.query;
      // The quota checker's lock on the organization row (FOR NO KEY UPDATE), the first lock taken:
      // creates of one organization are counted one after the other, and a concurrent slug change
      // (which refuses while environments are active and locks the row FOR UPDATE) either finishes
      // first or waits until this environment is committed and then sees it. Likewise a concurrent
      // deleteOrganization (same lock): the lock refuses an organization deleted meanwhile.
      const quota = new QuotaChecker(this.ctx);
      await quota.lock(organizationId, 'Workspace');
      await quota.admit(
        organizationId,
        { [QuotaResource.ENVIRONMENTS]: 1, [QuotaResource.CPU]: resources.cpu, [QuotaResource.RAM_MB]: resources.ramMb, [QuotaResource.DISK_GB]: resources.diskGb },
        { next: resources, grown: new Set(['cpu', 'ramMb', 'diskGb'] as const) },
      );
      // The id is chosen here so that the ciphertext can be bound to this very row.
      const id = randomUUID();
      const sealed = credentials ? await this.ctx.app.envelope.seal(query, organizationId, purpose(id), JSON.stringify(credentials)) : null;
      let row: Record<string, unknown>;
      try {
        ({ row } = await insertWithSlug({
          query,
          savepoint: (fn) => this.ctx.tx.savepoint(fn),
          scope: `environments.slug:${workspaceId}`,
          explicit: input.slug,
          name,
          fallback: 'environment',
          taken: async (candidates) =>
            (
              await query<{ s: string }>(
                `SELECT slug AS s FROM environments WHERE organization_id = $1 AND workspace_id = $2 AND is_active AND slug = ANY($3::text[])`,
                [organizationId, workspaceId, candidates],
              )
            ).map((r) => r.s),
          insert: async (slug) =>
            (
              await query(
                `INSERT INTO environments (organization_id, id, workspace_id, name, slug, tier, deployment_host, execution_backend,
                   cpu, ram_mb, disk_gb, cloud_credentials, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING ${ENVIRONMENT_COLUMNS}`,
                [organizationId, id, workspaceId, name, slug, tier, deploymentHost, executionBackend,
                  resources.cpu, resources.ramMb, resources.diskGb, sealed, actingUserId],
              )
            )[0]!,
          constraint: 'environments_slug_key',
          conflictMessage,
        }));
      } catch (error) {
        // The workspace was deleted concurrently (its row lock made the foreign-key check wait, then fail).
        if (pgError(error)?.code === '23503') throw new NotFoundError('Workspace');
        throw error;
      }
      const environment = this.toEnvironment(row);
      await this.ctx.audit.record({
        organizationId,
        action: 'environment.created',
        resourceType: 'environment',
        resourceId: id,
        resourceName: environment.name,
        workspaceId,
        metadata: {
          slug: environment.slug,
          tier,
          deploymentHost,
          resources,
          hasCloudCredentials: sealed !== null,
        },
      });
      return environment;
    });
  }

  /** PATCH semantics; cloudCredentials: omitted keeps them, null removes them, an object replaces them. */
  async update(id: string, input: UpdateEnvironmentInput): Promise<Environment> {
    const { environment: visible } = await this.ctx.access.environment(id);
    // Input validation does not depend on the row; everything that does reads the locked row below.
    const patch: Partial<Pick<Environment, 'name' | 'tier' | 'deploymentHost' | 'executionBackend' | 'cpu' | 'ramMb' | 'diskGb'>> = {};
    if (input.name !== undefined) patch.name = requiredName(input.name);
    if (input.tier !== undefined) patch.tier = enumValue(EnvironmentTier, input.tier, 'tier');
    if (input.deploymentHost !== undefined) patch.deploymentHost = enumValue(DeploymentHost, input.deploymentHost, 'deploymentHost');
    if (input.executionBackend !== undefined) patch.executionBackend = optionalText(input.executionBackend, 'executionBackend', EXECUTION_BACKEND_MAX);
    if (input.resources !== undefined) Object.assign(patch, validateResources(input.resources));
    const credentials =
      input.cloudCredentials === undefined || input.cloudCredentials === null
        ? input.cloudCredentials
        : credentialsObject(input.cloudCredentials);
    if (!visible.isActive) throw destroyedError();
    const { organizationId } = visible;

    return this.ctx.mutate(async () => {
      const query = this.ctx.tx.query;
      // New resources may grow the organization's totals: the quota checker's organization lock
      // comes first (the order of every quota-consuming mutation: organization, then its rows).
      const quota = new QuotaChecker(this.ctx);
      if (input.resources !== undefined) await quota.lock(organizationId, 'Environment');
      // Locked: a concurrent update of other fields waits, then builds on what this one wrote; a
      // destroy that committed meanwhile is seen here.
      const [locked] = await query(`SELECT ${ENVIRONMENT_COLUMNS} FROM environments WHERE organization_id = $1 AND id = $2 FOR UPDATE`, [organizationId, id]);
      if (!locked) throw new NotFoundError('Environment');
      const current = this.toEnvironment(locked);
      if (!current.isActive) throw destroyedError();
      const next: Environment = { ...current, ...patch };
      if (input.resources !== undefined) {
        // Only what grows is checked (shrinking an environment over a lowered limit is always allowed).
        const grown = new Set((['cpu', 'ramMb', 'diskGb'] as const).filter((key) => next[key] > current[key]));
        if (grown.size > 0) {
          const delta = (key: 'cpu' | 'ramMb' | 'diskGb') => (grown.has(key) ? next[key] - current[key] : 0);
          await quota.admit(organizationId, { [QuotaResource.CPU]: delta('cpu'), [QuotaResource.RAM_MB]: delta('ramMb'), [QuotaResource.DISK_GB]: delta('diskGb') }, { next, grown });
        }
      }
      const before: CredentialsMarker = current.hasCloudCredentials ? 'stored' : null;
      const after: CredentialsMarker = credentials === undefined ? before : credentials === null ? null : 'replaced';
      const changes = diffChanges(auditView(current, before), auditView(next, after), AUDITED_FIELDS, ['cloudCredentials']);
      const sealed = credentials ? await this.ctx.app.envelope.seal(query, organizationId, purpose(id), JSON.stringify(credentials)) : null;
      const [row] = await query(
        `UPDATE environments SET name = $3, tier = $4, deployment_host = $5, execution_backend = $6, cpu = $7, ram_mb = $8, disk_gb = $9,
           cloud_credentials = CASE WHEN $10::boolean THEN $11::bytea ELSE cloud_credentials END,
           updated_at = CASE WHEN $12::boolean THEN now() ELSE updated_at END
         WHERE organization_id = $1 AND id = $2 AND is_active RETURNING ${ENVIRONMENT_COLUMNS}`,
        [organizationId, id, next.name, next.tier, next.deploymentHost, next.executionBackend, next.cpu, next.ramMb, next.diskGb,
          credentials !== undefined, sealed, changes !== null],
      );
      if (!row) throw destroyedError();
      const updated = this.toEnvironment(row);
      await this.ctx.audit.record({
        organizationId,
        action: 'environment.updated',
        resourceType: 'environment',
        resourceId: id,
        resourceName: updated.name,
        workspaceId: updated.workspaceId,
        changes: changes ?? NO_CHANGES,
      });
      return updated;
    });
  }

  /** Soft: the row stays (isActive false, destroyedAt set), its slug and quota are freed. */
  async destroy(id: string): Promise<Environment> {
    const { environment } = await this.ctx.access.environment(id);
    if (!environment.isActive) throw destroyedError();
    const { organizationId } = environment;

    return this.ctx.mutate(async () => {
      // `AND is_active` makes two concurrent destroys yield one success and one precondition failure.
      const [row] = await this.ctx.tx.query(
        `UPDATE environments SET is_active = false, destroyed_at = now(), updated_at = now()
         WHERE organization_id = $1 AND id = $2 AND is_active RETURNING ${ENVIRONMENT_COLUMNS}`,
        [organizationId, id],
      );
      if (!row) throw destroyedError();
      const destroyed = this.toEnvironment(row);
      await this.ctx.audit.record({
        organizationId,
        action: 'environment.destroyed',
        resourceType: 'environment',
        resourceId: id,
        resourceName: destroyed.name,
        workspaceId: destroyed.workspaceId,
        metadata: { slug: destroyed.slug, tier: destroyed.tier },
      });
      return destroyed;
    });
  }
}
