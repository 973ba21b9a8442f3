import type { DataSource } from 'typeorm';
import { groupedLoader, keyedLoader } from '../../database/loader-helpers';
import { hydrator } from '../../database/hydrate';
import type { SqlQuery } from '../../database/tenant-transaction';
import { Environment } from './environment.entity';

/** What the API shows of an environment: everything but the credentials' ciphertext, of which only its presence. */
export const ENVIRONMENT_COLUMNS = `organization_id, id, workspace_id, name, slug, tier, deployment_host, execution_backend, is_active,
  cpu, ram_mb, disk_gb, created_by, created_at, updated_at, destroyed_at, cloud_credentials IS NOT NULL AS has_cloud_credentials`;

/** Rows selected with ENVIRONMENT_COLUMNS (or RETURNING them) into entities. */
export function environmentHydrator(ds: DataSource): (row: Record<string, unknown>) => Environment {
  const toEnvironment = hydrator(ds, Environment);
  return (row) => Object.assign(toEnvironment(row), { hasCloudCredentials: row.has_cloud_credentials === true });
}

/** Keys carry the tenant: the organization is part of every batch key and WHERE clause. */
export interface WorkspaceRef {
  organizationId: string;
  workspaceId: string;
}

/** Per-request loaders of environments; every query runs under row-level security. */
export function environmentLoaders(query: SqlQuery, ds: DataSource) {
  const toEnvironment = environmentHydrator(ds);
  return {
    environmentById: keyedLoader<string, Environment>(
      async (ids) => (await query(`SELECT ${ENVIRONMENT_COLUMNS} FROM environments WHERE id = ANY($1::uuid[])`, [ids])).map(toEnvironment),
      (e) => e.id,
    ),
    /** All environments (destroyed included) of many workspaces in one statement; filtered by the caller. */
    environmentsByWorkspace: groupedLoader<WorkspaceRef, Environment>(
      async (refs) =>
        (
          await query(`SELECT ${ENVIRONMENT_COLUMNS} FROM environments WHERE organization_id = ANY($1::uuid[]) AND workspace_id = ANY($2::uuid[]) ORDER BY created_at, id`, [
            [...new Set(refs.map((r) => r.organizationId))],
            refs.map((r) => r.workspaceId),
          ])
        ).map(toEnvironment),
      (e) => ({ organizationId: e.organizationId, workspaceId: e.workspaceId }),
      (r) => `${r.organizationId}:${r.workspaceId}`,
    ),
  };
}
