import type { SqlQuery } from '../database/tenant-transaction';
import { Envelope } from './envelope';

export interface RotationResult {
  rewrapped: number;
  alreadyCurrent: number;
}

/**
 * Rewraps every organization data key (organization_keys) with the current master key; values
 * sealed with the data keys are not touched. Each key is rewrapped in its own short transaction
 * (locked, unwrapped with whichever configured master key opens it, rewrapped, committed), so an
 * interrupted run leaves every key wrapped by one of the two master keys and a rerun finishes the
 * rest: keys the new master key already opens are counted and left alone.
 *
 * `transaction(organizationId, fn)` runs fn in a transaction scoped to that organization (RLS),
 * as a database role allowed to UPDATE organization_keys (the migration owner).
 */
export async function rotateMasterKey(
  envelope: Envelope,
  organizationIds: string[],
  transaction: <T>(organizationId: string, fn: (query: SqlQuery) => Promise<T>) => Promise<T>,
  onKey?: (done: number) => void,
): Promise<RotationResult> {
  const result: RotationResult = { rewrapped: 0, alreadyCurrent: 0 };
  for (const organizationId of organizationIds) {
    const versions = await transaction(organizationId, (query) =>
      query<{ version: number }>(`SELECT version FROM organization_keys WHERE organization_id = $1 ORDER BY version`, [organizationId]),
    );
    for (const { version } of versions) {
      await transaction(organizationId, async (query) => {
        const [row] = await query<{ wrapped_key: Buffer | Uint8Array }>(
          `SELECT wrapped_key FROM organization_keys WHERE organization_id = $1 AND version = $2 FOR UPDATE`,
          [organizationId, version],
        );
        if (!row) return;
        const { key, current } = envelope.unwrap(organizationId, version, Buffer.from(row.wrapped_key));
        if (current) {
          result.alreadyCurrent++;
          return;
        }
        await query(`UPDATE organization_keys SET wrapped_key = $3 WHERE organization_id = $1 AND version = $2`, [organizationId, version, envelope.wrap(organizationId, version, key)]);
        result.rewrapped++;
      });
      onKey?.(result.rewrapped + result.alreadyCurrent);
    }
  }
  return result;
}
