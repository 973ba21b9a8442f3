import type { MigrationInterface, QueryRunner } from 'typeorm';

const HIT = 'app_rate_limit_hit(text, text, uuid, text[], text[], integer, bytea, uuid)';

/**
 * The rate-limit counter now runs on the request's own connection, just ahead of its BEGIN
 * (TenantTransaction.ahead):
 * - as the role the service logs in as, before the transaction switches to the service's role:
 *   that role is granted EXECUTE explicitly (it held it only through membership of the service's
 *   role, which a NOINHERIT login role, or a membership granted WITH INHERIT FALSE, would lose —
 *   every count would then fail open);
 * - under the session's statement timeout (15 s), not the 1 s of its former side connections: the
 *   only wait in the function is for a counter row another statement holds, bounded here to 1 s
 *   so that such a count still fails open within a second.
 */
export class RateLimitLockTimeout1765800000000 implements MigrationInterface {
  name = 'RateLimitLockTimeout1765800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER FUNCTION ${HIT} SET lock_timeout = '1s'`);
    await q.query(`GRANT EXECUTE ON FUNCTION ${HIT} TO CURRENT_USER`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`REVOKE EXECUTE ON FUNCTION ${HIT} FROM CURRENT_USER`);
    await q.query(`ALTER FUNCTION ${HIT} RESET lock_timeout`);
  }
}
