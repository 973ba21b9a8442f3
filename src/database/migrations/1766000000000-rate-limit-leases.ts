import type { MigrationInterface, QueryRunner } from 'typeorm';
import { APP_ROLE, RATE_LIMITER_ROLE } from '../roles';
import { giveFunctionTo } from './1764600000000-hardening';
import { NAMES } from './1765600000000-rate-limits';
import { PROCEDURAL } from './1765900000000-procedural-rate-limit';

const NEW = 'app_rate_limit_hit(text, text, uuid, text[], text[], integer, bytea, uuid, integer)';

/**
 * The counter takes a count (`p_count`, 1–1000) and names the bucket of each row: an instance
 * reserves several requests of a bucket in one call (a lease, src/ratelimit/rate-limiter.ts) and
 * serves them without a statement each. Attribution, buckets and the limits are the same as in
 * 1765900000000; `hits` now counts the requests counted or reserved this minute, and a reservation
 * is atomic (`hits = hits + p_count` under the row's lock), so every instance sees it at once.
 */
const LEASES = `
CREATE FUNCTION app_rate_limit_hit(p_key text, p_subject text, p_organization uuid, p_kinds text[], p_ids text[], p_user_limit integer,
    p_api_key_hash bytea, p_api_key_id uuid, p_count integer)
  RETURNS TABLE (organization_id uuid, bucket text, window_start bigint, hits integer, max_hits integer, retry_after integer, ms_left integer)
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
  SET plan_cache_mode = force_generic_plan SET lock_timeout = '1s' AS $$
#variable_conflict use_column
DECLARE
  v_user uuid;
  v_key text;
  v_key_organization uuid;
  v_organizations uuid[] := '{}';
  v_candidate uuid;
  v_bucket text;
  v_limit integer;
  v_hits integer;
  v_window timestamptz;
  v_left numeric;
  item record;
BEGIN
  IF p_count IS NULL OR p_count < 1 OR p_count > 1000 THEN
    RAISE EXCEPTION 'p_count must be between 1 and 1000, not %', p_count USING ERRCODE = '22023';
  END IF;
  IF p_api_key_hash IS NOT NULL THEN
    SELECT k.organization_id, 'apikey:' || k.id INTO v_key_organization, v_key FROM public.api_keys k WHERE k.secret_hash = p_api_key_hash;
  END IF;
  IF v_key IS NULL AND p_api_key_id IS NOT NULL THEN
    SELECT k.organization_id, 'apikey:' || k.id INTO v_key_organization, v_key FROM public.api_keys k WHERE k.id = p_api_key_id;
  END IF;
  IF p_organization IS NOT NULL THEN
    v_organizations := ARRAY[p_organization];
  END IF;
  IF v_key_organization IS NOT NULL AND NOT v_key_organization = ANY (v_organizations) THEN
    v_organizations := v_organizations || v_key_organization;
  END IF;
  IF p_organization IS NULL AND p_subject IS NOT NULL AND cardinality(p_kinds) > 0 THEN
    SELECT u.id INTO v_user FROM public.users u WHERE u.subject = p_subject;
  END IF;
  IF v_user IS NOT NULL THEN
    FOR item IN SELECT n.kind, n.id FROM unnest(p_kinds, p_ids) AS n (kind, id) LIMIT 64 LOOP
      IF item.kind IN ('organization', 'organization_slug') THEN
        v_candidate := CASE item.kind WHEN 'organization' THEN item.id::uuid ELSE (SELECT o.id FROM public.organizations o WHERE o.slug = lower(item.id)) END;
        IF v_candidate IS NOT NULL AND NOT v_candidate = ANY (v_organizations)
           AND EXISTS (SELECT 1 FROM public.memberships m WHERE m.user_id = v_user AND m.organization_id = v_candidate) THEN
          v_organizations := v_organizations || v_candidate;
        END IF;
      ELSE
        v_organizations := v_organizations || ARRAY(
          SELECT mo.organization_id FROM (SELECT item.kind AS kind, item.id AS id) s, public.memberships mo
          WHERE mo.user_id = v_user AND NOT mo.organization_id = ANY (v_organizations) AND ${NAMES});
      END IF;
    END LOOP;
  END IF;

  IF cardinality(v_organizations) = 0 THEN
    INSERT INTO public.rate_limit_counters AS c (key, window_start, hits) VALUES (p_key, date_trunc('minute', now()), p_count)
      ON CONFLICT (key, window_start) DO UPDATE SET hits = c.hits + excluded.hits
      RETURNING c.hits, c.window_start INTO v_hits, v_window;
    v_left := extract(epoch FROM v_window + interval '1 minute' - clock_timestamp());
    RETURN QUERY SELECT NULL::uuid, p_key, (extract(epoch FROM v_window) * 1000)::bigint, v_hits, p_user_limit,
      greatest(1, ceil(v_left))::integer, greatest(0, floor(v_left * 1000))::integer;
    RETURN;
  END IF;
  IF cardinality(v_organizations) > 1 THEN
    v_organizations := ARRAY(SELECT DISTINCT a FROM unnest(v_organizations) AS a ORDER BY a);
  END IF;
  FOREACH v_candidate IN ARRAY v_organizations LOOP
    SELECT p.api_rate_limit_per_minute INTO v_limit FROM public.plans p
      WHERE p.key = coalesce((SELECT sub.plan_key FROM public.subscriptions sub WHERE sub.organization_id = v_candidate), 'FREE');
    v_bucket := coalesce(v_key, p_key) || '@' || v_candidate;
    INSERT INTO public.rate_limit_counters AS c (key, window_start, hits) VALUES (v_bucket, date_trunc('minute', now()), p_count)
      ON CONFLICT (key, window_start) DO UPDATE SET hits = c.hits + excluded.hits
      RETURNING c.hits, c.window_start INTO v_hits, v_window;
    v_left := extract(epoch FROM v_window + interval '1 minute' - clock_timestamp());
    RETURN QUERY SELECT v_candidate, v_bucket, (extract(epoch FROM v_window) * 1000)::bigint, v_hits, v_limit,
      greatest(1, ceil(v_left))::integer, greatest(0, floor(v_left * 1000))::integer;
  END LOOP;
END
$$`;

/** Who may call the counter: the service's role, and the login role it runs as ahead of BEGIN (1765800000000). */
async function grant(q: QueryRunner, signature: string): Promise<void> {
  await giveFunctionTo(q, signature, RATE_LIMITER_ROLE);
  await q.query(`GRANT EXECUTE ON FUNCTION ${signature} TO ${APP_ROLE}`);
  await q.query(`GRANT EXECUTE ON FUNCTION ${signature} TO CURRENT_USER`);
}

/**
 * The eight-argument form stays, counting one request with the new function, for the instances
 * of the previous version that still call it during a rolling deploy (without it they would fail
 * open and limit nothing until replaced). A later migration drops it.
 */
const PREVIOUS_FORM = `
CREATE OR REPLACE FUNCTION app_rate_limit_hit(p_key text, p_subject text, p_organization uuid, p_kinds text[], p_ids text[], p_user_limit integer,
    p_api_key_hash bytea, p_api_key_id uuid)
  RETURNS TABLE (organization_id uuid, hits integer, max_hits integer, retry_after integer)
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
  SET plan_cache_mode = force_generic_plan SET lock_timeout = '1s' AS $$
    SELECT h.organization_id, h.hits, h.max_hits, h.retry_after
    FROM public.app_rate_limit_hit(p_key, p_subject, p_organization, p_kinds, p_ids, p_user_limit, p_api_key_hash, p_api_key_id, 1) h
$$`;

export class RateLimitLeases1766000000000 implements MigrationInterface {
  name = 'RateLimitLeases1766000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(LEASES);
    await grant(q, NEW);
    // CREATE OR REPLACE keeps the previous form's owner and grants.
    await q.query(PREVIOUS_FORM);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(PROCEDURAL);
    await q.query(`DROP FUNCTION ${NEW}`);
  }
}
