import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { systemPrincipal } from '../../auth/principal';
import { setBounded } from '../../common/bounded-map';
import type { Database } from '../../database/database';
import { TenantTransaction } from '../../database/tenant-transaction';

/** `lastUsedAt` moves at most once a minute per key (SPEC §2). */
export const LAST_USED_RESOLUTION_MS = 60_000;
const REMEMBERED_MAX = 10_000;
const written = new WeakMap<Database, Map<string, number>>();

/**
 * Records that an API key was used, outside the request's transaction: at most one statement per
 * key and minute from this process (an in-process coalescer), sent after the response on a unit of
 * work of its own (it neither delays the request nor rolls back with it), and guarded in SQL so
 * that several instances together still move `last_used_at` at most once a minute.
 */
export function recordApiKeyUse(db: Database, key: { id: string; organizationId: string }, logger: Logger): void {
  let seen = written.get(db);
  if (!seen) written.set(db, (seen = new Map()));
  const now = Date.now();
  if ((seen.get(key.id) ?? -Infinity) > now - LAST_USED_RESOLUTION_MS) return;
  setBounded(seen, key.id, now, REMEMBERED_MAX);
  setImmediate(() => {
    TenantTransaction.run(db, systemPrincipal(key.organizationId, 'api_key_last_used'), `api-key-used:${randomUUID()}`, (tx) =>
      tx.query(
        `UPDATE api_keys SET last_used_at = now()
         WHERE organization_id = $1 AND id = $2 AND (last_used_at IS NULL OR last_used_at <= now() - make_interval(secs => $3))`,
        [key.organizationId, key.id, LAST_USED_RESOLUTION_MS / 1000],
      ),
    ).catch((error: unknown) => {
      // Only a timestamp was lost; the next use after a minute writes it again.
      seen.delete(key.id);
      logger.warn({ err: error, apiKeyId: key.id }, 'could not record API key use');
    });
  });
}
