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

/**
 * Reseals the service's own secrets sealed directly by the master key (the JWT signing keys of
 * `service_signing_keys`) with the current master key; one short transaction per key, each
 * locked, so it is as interruptible and rerunnable as the data keys' rotation.
 */
export async function rotateServiceKeys(
  envelope: Envelope,
  transaction: <T>(fn: (query: SqlQuery) => Promise<T>) => Promise<T>,
  purposeOf: (kid: string) => string,
): Promise<RotationResult> {
  const result: RotationResult = { rewrapped: 0, alreadyCurrent: 0 };
  const kids = await transaction((query) => query<{ kid: string }>(`SELECT kid FROM service_signing_keys ORDER BY kid`));
  for (const { kid } of kids) {
    await transaction(async (query) => {
      const [row] = await query<{ sealed_private_key: Buffer | Uint8Array }>(`SELECT sealed_private_key FROM service_signing_keys WHERE kid = $1 FOR UPDATE`, [kid]);
      if (!row) return;
      const { plaintext, current } = envelope.openWithMaster(purposeOf(kid), Buffer.from(row.sealed_private_key));
      if (current) {
        result.alreadyCurrent++;
        return;
      }
      await query(`UPDATE service_signing_keys SET sealed_private_key = $2 WHERE kid = $1`, [kid, envelope.sealWithMaster(purposeOf(kid), plaintext)]);
      result.rewrapped++;
    });
  }
  return result;
}
