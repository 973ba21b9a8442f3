import type DataLoader from 'dataloader';
import type { DataSource } from 'typeorm';
import { groupedLoader, keyedLoader, oneOf, type PairKeys } from '../../database/loader-helpers';
import { hydrator } from '../../database/hydrate';
import { ListColumns } from '../../database/projection';
import type { SqlQuery } from '../../database/tenant-transaction';
import { Environment } from './environment.entity';

/** What the API shows of an environment: everything but the credentials' ciphertext, of which only its presence. */
export const ENVIRONMENT_COLUMNS = `organization_id, id, workspace_id, name, slug, tier, deployment_host, execution_backend, is_active,
  cpu, ram_mb, disk_gb, created_by, created_at, updated_at, destroyed_at, cloud_credentials IS NOT NULL AS has_cloud_credentials`;

/** What lists of environments read: the lean columns serve these fields (and the list's own filters on tier and isActive). */
export const ENVIRONMENT_LIST_COLUMNS = new ListColumns(
  'organization_id, id, workspace_id, name, slug, tier, deployment_host, is_active',
  ENVIRONMENT_COLUMNS,
  ['id', 'name', 'slug', 'tier', 'deploymentHost', 'isActive', 'workspace', 'organization'],
);

/** Rows selected with ENVIRONMENT_COLUMNS (or RETURNING them) into entities. */
export function environmentHydrator(ds: DataSource): (row: Record<string, unknown>) => Environment {
  const toEnvironment = hydrator(ds, Environment);
  return (row) => {
    const environment = toEnvironment(row);
    environment.hasCloudCredentials = row.has_cloud_credentials === true;
    return environment;
  };
}

/**
 * A workspace's environments as one JSON column of the statement that reads the workspace (`w`:
 * its alias there), in the order the list loaders read them: a page of workspaces whose selection
 * asks for their environments brings them along (look-ahead) instead of a statement of its own,
 * one round trip later. The same columns as the list loaders (`columns`), so that the rows prime
 * them (primeEnvironments); `_c` only orders them. Row-level security applies as to any statement.
 */
export const environmentsAlong = (columns: string, w: string) =>
  `(SELECT coalesce(json_agg(e ORDER BY e._c, e.id), '[]'::json) FROM (
     SELECT ${columns}, created_at AS _c FROM environments x WHERE x.organization_id = ${w}.organization_id AND x.workspace_id = ${w}.id) e) AS environments_along`;

/** Which of the two environment list loaders a look-ahead primes (see ENVIRONMENT_LIST_COLUMNS). */
export type EnvironmentColumns = 'lean' | 'full';

/** Primes the list loader of `columns` with a workspace's environments read along with it (environmentsAlong); whole rows prime the lean one too. */
export type EnvironmentPrimer = (columns: EnvironmentColumns, workspace: WorkspaceRef, rows: ReadonlyArray<Record<string, unknown>>) => void;

export function environmentPrimer(
  ds: DataSource,
  loaders: Record<'environmentsByWorkspace' | 'leanEnvironmentsByWorkspace', DataLoader<WorkspaceRef, Environment[], unknown>>,
): EnvironmentPrimer {
  const toEnvironment = environmentHydrator(ds);
  return (columns, workspace, rows) => {
    const environments = rows.map(toEnvironment);
    // Whole rows serve a lean list as well (they hold every lean column): both are primed.
    if (columns === 'full') loaders.environmentsByWorkspace.prime(workspace, environments);
    loaders.leanEnvironmentsByWorkspace.prime(workspace, environments);
  };
}

/** Keys carry the tenant: the organization is part of every batch key and WHERE clause. */
export interface WorkspaceRef {
  organizationId: string;
  workspaceId: string;
}

/** How loaders keyed by workspace tell their keys apart: both ids, in nested maps (PairMap). */
export const WORKSPACE_REF: PairKeys<WorkspaceRef> = { first: (r) => r.organizationId, second: (r) => r.workspaceId };

/** Per-request loaders of environments; every query runs under row-level security. */
export function environmentLoaders(query: SqlQuery, ds: DataSource) {
  const toEnvironment = environmentHydrator(ds);
  const byWorkspace = (columns: string) =>
    groupedLoader<WorkspaceRef, Environment>(
      async (refs) => {
        // Several organizations as an index condition, not a hashed set (see oneOf).
        const owners = oneOf('organization_id', 1, [...new Set(refs.map((r) => r.organizationId))], 'uuid', 'index');
        // The workspaces as a hashed join rather than `workspace_id = ANY(…)`, which the generic plan
        // tests element by element for every row (Q3: 250 workspaces, 0.75 ms instead of 1.2).
        const rows = await query(
          `SELECT ${columns} FROM environments JOIN unnest($2::uuid[]) AS wanted (workspace_id) USING (workspace_id)
           WHERE ${owners.sql} ORDER BY created_at, id`,
          [owners.param, [...new Set(refs.map((r) => r.workspaceId))]],
        );
        return rows.map(toEnvironment);
      },
      // An environment is its own ref (it has both ids): no object per row.
      (e) => e,
      WORKSPACE_REF,
    );
  return {
    environmentById: keyedLoader<string, Environment>(
      async (ids) => {
        const k = oneOf('id', 1, ids);
        return (await query(`SELECT ${ENVIRONMENT_COLUMNS} FROM environments WHERE ${k.sql}`, [k.param])).map(toEnvironment);
      },
      (e) => e.id,
    ),
    /** All environments (destroyed included) of many workspaces in one statement, with every column; filtered by the caller. */
    environmentsByWorkspace: byWorkspace(ENVIRONMENT_LIST_COLUMNS.full),
    /** The same with only ENVIRONMENT_LIST_COLUMNS.lean: for a list whose selection they serve (see ListColumns). */
    leanEnvironmentsByWorkspace: byWorkspace(ENVIRONMENT_LIST_COLUMNS.lean),
  };
}
