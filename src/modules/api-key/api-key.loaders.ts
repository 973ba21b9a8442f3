import { groupedLoader, keyedLoader } from '../../database/loader-helpers';
import type { SqlQuery } from '../../database/tenant-transaction';
import { API_KEY_COLUMNS, type ApiKey, toApiKey } from './api-key.types';

/** Per-request loaders of API keys (row-level security keeps them to the principal's organizations; never the hash). */
export function apiKeyLoaders(query: SqlQuery) {
  return {
    apiKeyById: keyedLoader<string, ApiKey>(
      async (ids) => (await query<ApiKey>(`SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE id = ANY($1::uuid[])`, [ids])).map(toApiKey),
      (k) => k.id,
    ),
    apiKeysByOrganization: groupedLoader<string, ApiKey>(
      async (organizationIds) =>
        (await query<ApiKey>(`SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE organization_id = ANY($1::uuid[]) ORDER BY organization_id, created_at, id`, [organizationIds])).map(toApiKey),
      (k) => k.organizationId,
    ),
  };
}
