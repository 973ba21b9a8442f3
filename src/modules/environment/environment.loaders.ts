import type { DataSource } from 'typeorm';
import { groupedLoader, keyedLoader } from '../../database/loader-helpers';
import { hydrator } from '../../database/hydrate';
import type { SqlQuery } from '../../database/tenant-transaction';
import { Environment } from './environment.entity';

/** Keys carry the tenant: the organization is part of every batch key and WHERE clause. */
export interface WorkspaceRef {
  organizationId: string;
  workspaceId: string;
}

/** Per-request loaders of environments; every query runs under row-level security. */
export function environmentLoaders(query: SqlQuery, ds: DataSource) {
  const toEnvironment = hydrator(ds, Environment);
  return {
    environmentById: keyedLoader<string, Environment>(
      async (ids) => (await query(`SELECT * FROM environments WHERE id = ANY($1::uuid[])`, [ids])).map(toEnvironment),
      (e) => e.id,
    ),
    /** All environments (destroyed included) of many workspaces in one statement; filtered by the caller. */
    environmentsByWorkspace: groupedLoader<WorkspaceRef, Environment>(
      async (refs) =>
        (
          await query(`SELECT * FROM environments WHERE organization_id = ANY($1::uuid[]) AND workspace_id = ANY($2::uuid[]) ORDER BY created_at, id`, [
            [...new Set(refs.map((r) => r.organizationId))],
            refs.map((r) => r.workspaceId),
          ])
        ).map(toEnvironment),
      (e) => ({ organizationId: e.organizationId, workspaceId: e.workspaceId }),
      (r) => `${r.organizationId}:${r.workspaceId}`,
    ),
  };
}
