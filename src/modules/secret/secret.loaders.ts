import { groupedLoader } from '../../database/loader-helpers';
import type { SqlQuery } from '../../database/tenant-transaction';
import { METADATA_COLUMNS, type SecretRow } from './secret.types';

/** Per-request loaders of secret metadata (never values): organization-level secrets, and a workspace's own. */
export function secretLoaders(query: SqlQuery) {
  return {
    organizationSecrets: groupedLoader<string, SecretRow>(
      (organizationIds) =>
        query<SecretRow>(`SELECT ${METADATA_COLUMNS} FROM secrets WHERE organization_id = ANY($1::uuid[]) AND workspace_id IS NULL ORDER BY organization_id, key`, [
          organizationIds,
        ]),
      (r) => r.organizationId,
    ),
    workspaceSecrets: groupedLoader<string, SecretRow>(
      (workspaceIds) =>
        query<SecretRow>(`SELECT ${METADATA_COLUMNS} FROM secrets WHERE workspace_id = ANY($1::uuid[]) ORDER BY workspace_id, key`, [workspaceIds]),
      (r) => r.workspaceId!,
    ),
  };
}
