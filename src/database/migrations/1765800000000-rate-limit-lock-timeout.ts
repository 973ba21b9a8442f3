import type { MigrationInterface, QueryRunner } from 'typeorm';

const HIT = 'app_rate_limit_hit(text, text, uuid, text[], text[], integer, bytea, uuid)';

/**
 * The rate-limit counter now runs on the request's own connection, just ahead of its BEGIN
 * (TenantTransaction.ahead), where the session's statement timeout is the request's (15 s), not
 * the 1 s of the counter's former side connections. A counter row held by someone else must still
 * fail open within a second: the wait for its lock is bounded inside the function.
 */
export class RateLimitLockTimeout1765800000000 implements MigrationInterface {
  name = 'RateLimitLockTimeout1765800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER FUNCTION ${HIT} SET lock_timeout = '1s'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER FUNCTION ${HIT} RESET lock_timeout`);
  }
}
