import type { DataSource } from 'typeorm';
import { groupedLoader, keyedLoader } from '../../database/loader-helpers';
import { hydrator } from '../../database/hydrate';
import type { SqlQuery } from '../../database/tenant-transaction';
import { Environment } from './environment.entity';

/** Per-request loaders of environments; every query runs under row-level security. */
export function environmentLoaders(query: SqlQuery, ds: DataSource) {
  const toEnvironment = hydrator(ds, Environment);
  return {
    environmentById: keyedLoader<string, Environment>(
      async (ids) => (await query(`SELECT * FROM environments WHERE id = ANY($1::uuid[])`, [ids])).map(toEnvironment),
      (e) => e.id,
    ),
    /** All environments (destroyed included) of many workspaces in one statement; filtered by the caller. */
    environmentsByWorkspace: groupedLoader<string, Environment>(
      async (ids) =>
        (await query(`SELECT * FROM environments WHERE workspace_id = ANY($1::uuid[]) ORDER BY created_at, id`, [ids])).map(toEnvironment),
      (e) => e.workspaceId,
    ),
  };
}
