import type { MigrationInterface, QueryRunner } from 'typeorm';
import { APP_ROLE, RATE_LIMITER_ROLE } from '../roles';
import { ensureRole, giveFunctionTo } from './1764600000000-hardening';

/** Tables the counter function reads to attribute a request to an organization: the columns it reads. */
const LOOKUPS: Array<[table: string, columns: string]> = [
  ['users', 'id, subject'],
  ['memberships', 'organization_id, user_id'],
  ['organizations', 'id, slug'],
  ['workspaces', 'organization_id, id'],
  ['environments', 'organization_id, id'],
  ['roles', 'organization_id, id'],
  ['invitations', 'organization_id, id'],
  ['subscriptions', 'organization_id, plan_key'],
  ['api_keys', 'organization_id, id, secret_hash'],
];

/** The scope kinds a request can name (src/ratelimit/attribution.ts sends them), each matched within the principal's own organizations. */
export const NAMES = `CASE s.kind
  WHEN 'organization' THEN mo.organization_id = s.id::uuid
  WHEN 'organization_slug' THEN EXISTS (SELECT 1 FROM public.organizations o WHERE o.id = mo.organization_id AND o.slug = s.id)
  WHEN 'workspace' THEN EXISTS (SELECT 1 FROM public.workspaces w WHERE w.organization_id = mo.organization_id AND w.id = s.id::uuid)
  WHEN 'environment' THEN EXISTS (SELECT 1 FROM public.environments e WHERE e.organization_id = mo.organization_id AND e.id = s.id::uuid)
  WHEN 'role' THEN EXISTS (SELECT 1 FROM public.roles r WHERE r.organization_id = mo.organization_id AND r.id = s.id::uuid)
  WHEN 'invitation' THEN EXISTS (SELECT 1 FROM public.invitations i WHERE i.organization_id = mo.organization_id AND i.id = s.id::uuid)
  WHEN 'api_key' THEN EXISTS (SELECT 1 FROM public.api_keys k WHERE k.organization_id = mo.organization_id AND k.id = s.id::uuid)
  ELSE false END`;

/**
 * The counter as this migration created it: one statement of CTEs (1765900000000 replaces its
 * body with procedural steps; its `down` puts this one back).
 */
export const RATE_LIMIT_HIT_AS_ONE_STATEMENT = `
      CREATE FUNCTION app_rate_limit_hit(p_key text, p_subject text, p_organization uuid, p_kinds text[], p_ids text[], p_user_limit integer,
          p_api_key_hash bytea, p_api_key_id uuid)
        RETURNS TABLE (organization_id uuid, hits integer, max_hits integer, retry_after integer)
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
        -- One plan for every call: a custom plan per call spent ~1 ms planning this statement (pgbench).
        SET plan_cache_mode = force_generic_plan AS $$
        #variable_conflict use_column
        BEGIN
          RETURN QUERY WITH scope AS (
            SELECT s.kind, s.id FROM unnest(p_kinds, p_ids) AS s (kind, id) LIMIT 64
          ), viewer AS (
            SELECT u.id FROM public.users u WHERE p_subject IS NOT NULL AND u.subject = p_subject
          ), named AS (
            -- An organization named by id or slug is resolved first, then one membership row checked
            -- (a user of 200 organizations is not scanned for the common case).
            SELECT s.kind, s.id, CASE s.kind
                WHEN 'organization' THEN s.id::uuid
                WHEN 'organization_slug' THEN (SELECT o.id FROM public.organizations o WHERE o.slug = lower(s.id))
              END AS organization_id
            FROM scope s
          ), api_key AS (
            -- Two index lookups (an OR would not use the indexes in the generic plan); a null parameter matches nothing.
            (SELECT k.organization_id, 'apikey:' || k.id AS key FROM public.api_keys k WHERE k.secret_hash = p_api_key_hash
             UNION ALL
             SELECT k.organization_id, 'apikey:' || k.id AS key FROM public.api_keys k WHERE k.id = p_api_key_id)
            LIMIT 1
          ), attributed AS (
            SELECT p_organization AS organization_id WHERE p_organization IS NOT NULL
            UNION
            SELECT ak.organization_id FROM api_key ak
            UNION
            SELECT s.organization_id FROM named s
            WHERE p_organization IS NULL AND s.kind IN ('organization', 'organization_slug') AND s.organization_id IS NOT NULL
              AND EXISTS (SELECT 1 FROM viewer v JOIN public.memberships m ON m.user_id = v.id AND m.organization_id = s.organization_id)
            UNION
            -- A workspace, environment, role, invitation or key id: matched within the viewer's organizations.
            SELECT mo.organization_id FROM named s
              CROSS JOIN LATERAL (SELECT mo.organization_id FROM viewer v JOIN public.memberships mo ON mo.user_id = v.id WHERE ${NAMES}) mo
            WHERE p_organization IS NULL AND s.kind NOT IN ('organization', 'organization_slug')
          ), buckets AS (
            SELECT a.organization_id, coalesce((SELECT ak.key FROM api_key ak), p_key) || '@' || a.organization_id AS key,
              (SELECT p.api_rate_limit_per_minute FROM public.plans p
                WHERE p.key = coalesce((SELECT s.plan_key FROM public.subscriptions s WHERE s.organization_id = a.organization_id), 'FREE')) AS max_hits
            FROM attributed a
            UNION ALL
            SELECT NULL::uuid, p_key, p_user_limit WHERE NOT EXISTS (SELECT 1 FROM attributed)
          ), counted AS (
            INSERT INTO public.rate_limit_counters AS c (key, window_start, hits)
            SELECT b.key, date_trunc('minute', now()), 1 FROM buckets b
            ON CONFLICT (key, window_start) DO UPDATE SET hits = c.hits + 1
            RETURNING c.key, c.hits, c.window_start
          )
          SELECT b.organization_id, c.hits, b.max_hits,
            greatest(1, ceil(extract(epoch FROM c.window_start + interval '1 minute' - clock_timestamp())))::integer
          FROM buckets b JOIN counted c ON c.key = b.key;
        END
        $$`;

/**
 * Rate limits shared by every instance (SPEC §8; README "Rate limits"):
 * - `rate_limit_counters`, an UNLOGGED infrastructure table (global, like the job leases: SPEC §3):
 *   one row per (bucket, minute). Unlogged because a counter is worth less than the WAL it would
 *   write on every request; a crash empties it, which only forgives the current minute.
 * - `app_rate_limit_hit`, one statement per request, outside the request's transaction: it finds
 *   which of the organizations named by the request the principal belongs to (matched within its
 *   own memberships, so a foreign id counts like no id at all and reveals nothing), reads their
 *   plan's `api_rate_limit_per_minute`, and counts the request in each bucket
 *   (`INSERT … ON CONFLICT DO UPDATE SET hits = hits + 1 RETURNING`, atomic per row).
 * - `app_rate_limit_sweep`, run by the scheduler: deletes past minutes.
 * Both are SECURITY DEFINER, owned by a NOLOGIN role that may read only the columns above; the
 * service's role has no right on the table itself.
 */
export class RateLimits1765600000000 implements MigrationInterface {
  name = 'RateLimits1765600000000';

  async up(q: QueryRunner): Promise<void> {
    await ensureRole(q, RATE_LIMITER_ROLE);
    await q.query(`
      CREATE UNLOGGED TABLE rate_limit_counters (
        key text NOT NULL CHECK (char_length(key) <= 512),
        window_start timestamptz NOT NULL,
        hits integer NOT NULL,
        PRIMARY KEY (key, window_start)
      )`);
    await q.query(`CREATE INDEX rate_limit_counters_window_idx ON rate_limit_counters (window_start)`);
    await q.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON rate_limit_counters TO ${RATE_LIMITER_ROLE}`);
    for (const [table, columns] of LOOKUPS) {
      await q.query(`GRANT SELECT (${columns}) ON ${table} TO ${RATE_LIMITER_ROLE}`);
      await q.query(`CREATE POLICY rate_limit_lookup ON ${table} FOR SELECT TO ${RATE_LIMITER_ROLE} USING (true)`);
    }
    await q.query(`GRANT SELECT (key, api_rate_limit_per_minute) ON plans TO ${RATE_LIMITER_ROLE}`);

    // PL/pgSQL rather than SQL: its plan is prepared once per connection (a SQL function with a
    // data-modifying CTE is planned on every call, which bench:ratelimit measured as the slower).
    // p_key: the principal's bucket (src/ratelimit/principal-key.ts); p_subject: a user's token subject
    // (its memberships decide); p_organization: the one organization a principal acts in (API keys);
    // p_kinds/p_ids: what the request's root fields name; p_user_limit: RATE_LIMIT_USER_PER_MINUTE;
    // p_api_key_hash / p_api_key_id: an API key as presented (raw key or exchanged token), resolved here
    // to its organization and to one bucket per key whichever way it came (`apikey:<id>@<organization>`).
    // One row per bucket counted: the organization (null: outside any), hits so far this minute,
    // the limit (null: unlimited) and the seconds until the minute ends.
    await q.query(RATE_LIMIT_HIT_AS_ONE_STATEMENT);
    await giveFunctionTo(q, 'app_rate_limit_hit(text, text, uuid, text[], text[], integer, bytea, uuid)', RATE_LIMITER_ROLE);
    await q.query(`GRANT EXECUTE ON FUNCTION app_rate_limit_hit(text, text, uuid, text[], text[], integer, bytea, uuid) TO ${APP_ROLE}`);

    await q.query(`
      CREATE FUNCTION app_rate_limit_sweep() RETURNS integer
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          WITH gone AS (DELETE FROM public.rate_limit_counters WHERE window_start < date_trunc('minute', now()) RETURNING 1)
          SELECT count(*)::integer FROM gone
        $$`);
    await giveFunctionTo(q, 'app_rate_limit_sweep()', RATE_LIMITER_ROLE);
    await q.query(`GRANT EXECUTE ON FUNCTION app_rate_limit_sweep() TO ${APP_ROLE}`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS app_rate_limit_sweep()`);
    await q.query(`DROP FUNCTION IF EXISTS app_rate_limit_hit(text, text, uuid, text[], text[], integer, bytea, uuid)`);
    for (const [table] of LOOKUPS) {
      await q.query(`DROP POLICY IF EXISTS rate_limit_lookup ON ${table}`);
      await q.query(`REVOKE ALL ON ${table} FROM ${RATE_LIMITER_ROLE}`);
    }
    await q.query(`REVOKE ALL ON plans FROM ${RATE_LIMITER_ROLE}`);
    await q.query(`DROP TABLE IF EXISTS rate_limit_counters`);
  }
}
