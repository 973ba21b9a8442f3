import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What of an organization's security settings could refuse a principal (SPEC §2), as stored
 * columns generated from `security`, each with an index: `require_mfa`, `session_timeout_minutes`
 * (null when the settings leave it to the default) and `ip_allowlisted`. They flag what the
 * expressions organizationsThatMayRefuse tested on `security` itself flagged, and never fail on
 * what `security` holds (a write, and this migration over rows written by older versions, would):
 * a `requireMfa` other than false or null counts as required, a fractional timeout is rounded
 * down (flagged a little early, decided exactly by Access.inside), a timeout that is not a number
 * is left to the default, and timeouts stay below 2^31 - 1, the value a token of unknown age is
 * tested against. The API only ever stores booleans and whole minutes from 5 to 43 200.
 *
 * That statement runs with every list of one's organizations. On the jsonb, its conditions are
 * not leakproof (`->>` and the casts can fail on what they read), so row-level security had to
 * be applied to every organization of the scope before them: the scope parsed, an index probe
 * per organization (200 for the bench user) and every `security` read — about 0.8 ms of
 * PostgreSQL's time per request. On plain columns the conditions are leakproof comparisons: they
 * run first, through these indexes (or a scan of the small table), and the policy is only
 * evaluated for the few organizations they let through, most often none.
 */
const COLUMNS = `
ALTER TABLE organizations
  ADD COLUMN require_mfa boolean NOT NULL GENERATED ALWAYS AS (coalesce(security->'requireMfa', 'false'::jsonb) NOT IN ('false'::jsonb, 'null'::jsonb)) STORED,
  ADD COLUMN session_timeout_minutes integer GENERATED ALWAYS AS (CASE WHEN jsonb_typeof(security->'sessionTimeoutMinutes') = 'number'
    THEN greatest(least(floor((security->>'sessionTimeoutMinutes')::numeric), 2147483646), -2147483648)::integer END) STORED,
  ADD COLUMN ip_allowlisted boolean NOT NULL GENERATED ALWAYS AS (coalesce(security->'ipAllowlist', '[]'::jsonb) NOT IN ('[]'::jsonb, 'null'::jsonb)) STORED`;

const INDEXES = [
  `CREATE INDEX organizations_require_mfa_idx ON organizations (require_mfa)`,
  `CREATE INDEX organizations_session_timeout_idx ON organizations (session_timeout_minutes)`,
  `CREATE INDEX organizations_ip_allowlisted_idx ON organizations (ip_allowlisted)`,
];

export class SecurityColumns1766300000000 implements MigrationInterface {
  name = 'SecurityColumns1766300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(COLUMNS);
    for (const index of INDEXES) await q.query(index);
  }

  async down(q: QueryRunner): Promise<void> {
    // Dropping the columns drops their indexes.
    await q.query(`ALTER TABLE organizations DROP COLUMN ip_allowlisted, DROP COLUMN session_timeout_minutes, DROP COLUMN require_mfa`);
  }
}
