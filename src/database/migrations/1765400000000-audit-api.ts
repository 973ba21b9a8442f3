import type { MigrationInterface, QueryRunner } from 'typeorm';
import { APP_ROLE, AUDIT_PRUNER_ROLE } from '../roles';
import { ensureRole, giveFunctionTo } from './1764600000000-hardening';

/** When an event of the organization `org` has outlived its plan's auditRetentionDays (NULL: never), by the database's clock. */
const expiredFor = (org: string, occurredAt: string) => `${occurredAt} < (
  SELECT now() - make_interval(days => p.audit_retention_days)
  FROM public.subscriptions s JOIN public.plans p ON p.key = s.plan_key
  WHERE s.organization_id = ${org} AND p.audit_retention_days IS NOT NULL)`;

/**
 * The audit API (SPEC §5 Audit). The query and the export read through the existing
 * `(organization_id, occurred_at DESC, id DESC)` index; this adds what their filters and the
 * retention job need:
 * - `audit_events_actor_idx` and `audit_events_resource_idx`, each leading with the organization
 *   and ending with the keyset order: a filter on an actor or a resource reads only its events,
 *   newest first, instead of walking the organization's trail until enough match (README, "Audit
 *   trail", shows the plans with and without them). Actions and the time window ride on the main
 *   index: an (organization_id, action, …) index was measured and left out — PostgreSQL cannot
 *   merge several actions in key order, so it made a multi-action page sort every match.
 * - `tenant_service_audit_pruner`, a NOLOGIN role that may read only the retention of a plan,
 *   the plan of a subscription and the time of audit events, and delete audit events — and the
 *   database lets it delete **only expired ones** (a restrictive policy: an event younger than its
 *   organization's plan allows stays, whatever the code asks), only in the transaction's scope
 *   (`tenant_isolation` still applies to deletes). It owns two SECURITY DEFINER functions with a
 *   pinned search_path:
 *   - `app_due_audit_retention(limit)`: the ids of organizations holding expired events (the
 *     scheduler's due lookup), nothing else;
 *   - `app_prune_audit_events(organization, limit)`: deletes up to `limit` (≤ 10 000) of that
 *     organization's expired events, oldest first, and answers how many.
 *   The service's own role still has no DELETE on the audit trail: a request cannot remove an event.
 */
export class AuditApi1765400000000 implements MigrationInterface {
  name = 'AuditApi1765400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX audit_events_actor_idx ON audit_events (organization_id, actor_id, occurred_at DESC, id DESC) WHERE actor_id IS NOT NULL`);
    await q.query(`CREATE INDEX audit_events_resource_idx ON audit_events (organization_id, resource_id, occurred_at DESC, id DESC) WHERE resource_id IS NOT NULL`);

    await ensureRole(q, AUDIT_PRUNER_ROLE);
    await q.query(`GRANT SELECT (organization_id, plan_key) ON subscriptions TO ${AUDIT_PRUNER_ROLE}`);
    await q.query(`GRANT SELECT (key, audit_retention_days) ON plans TO ${AUDIT_PRUNER_ROLE}`);
    await q.query(`GRANT SELECT (organization_id, id, occurred_at), DELETE ON audit_events TO ${AUDIT_PRUNER_ROLE}`);
    // The due lookup runs before any organization is in scope: it sees every organization's plan and event times (only those columns).
    await q.query(`CREATE POLICY audit_prune_scan ON subscriptions FOR SELECT TO ${AUDIT_PRUNER_ROLE} USING (true)`);
    await q.query(`CREATE POLICY audit_prune_scan ON audit_events FOR SELECT TO ${AUDIT_PRUNER_ROLE} USING (true)`);
    await q.query(`CREATE POLICY audit_prune_only_expired ON audit_events AS RESTRICTIVE FOR DELETE TO ${AUDIT_PRUNER_ROLE} USING (${expiredFor('audit_events.organization_id', 'occurred_at')})`);

    await q.query(`
      CREATE FUNCTION app_due_audit_retention(p_limit integer) RETURNS SETOF uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          SELECT s.organization_id FROM public.subscriptions s JOIN public.plans p ON p.key = s.plan_key
          WHERE p.audit_retention_days IS NOT NULL
            AND EXISTS (SELECT 1 FROM public.audit_events a
                        WHERE a.organization_id = s.organization_id AND a.occurred_at < now() - make_interval(days => p.audit_retention_days))
          LIMIT least(greatest(p_limit, 0), 1000)
        $$`);
    await giveFunctionTo(q, 'app_due_audit_retention(integer)', AUDIT_PRUNER_ROLE);
    await q.query(`GRANT EXECUTE ON FUNCTION app_due_audit_retention(integer) TO ${APP_ROLE}`);

    // The batch is bounded by the key of its last row (one index range, whatever the statistics say),
    // not by a list of ids joined back to the table, which an unanalyzed table could plan as a nested seq scan.
    await q.query(`
      CREATE FUNCTION app_prune_audit_events(p_organization_id uuid, p_limit integer) RETURNS integer
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
          v_cutoff timestamptz;
          v_at timestamptz;
          v_id uuid;
          v_deleted integer;
        BEGIN
          SELECT now() - make_interval(days => p.audit_retention_days) INTO v_cutoff
          FROM public.subscriptions s JOIN public.plans p ON p.key = s.plan_key
          WHERE s.organization_id = p_organization_id AND p.audit_retention_days IS NOT NULL;
          IF v_cutoff IS NULL OR p_limit < 1 THEN
            RETURN 0;
          END IF;
          SELECT a.occurred_at, a.id INTO v_at, v_id FROM public.audit_events a
          WHERE a.organization_id = p_organization_id AND a.occurred_at < v_cutoff
          ORDER BY a.occurred_at, a.id
          OFFSET least(p_limit, 10000) - 1 LIMIT 1;
          IF v_at IS NULL THEN
            DELETE FROM public.audit_events a WHERE a.organization_id = p_organization_id AND a.occurred_at < v_cutoff;
          ELSE
            DELETE FROM public.audit_events a
            WHERE a.organization_id = p_organization_id AND a.occurred_at < v_cutoff AND (a.occurred_at, a.id) <= (v_at, v_id);
          END IF;
          GET DIAGNOSTICS v_deleted = ROW_COUNT;
          RETURN v_deleted;
        END
        $$`);
    await giveFunctionTo(q, 'app_prune_audit_events(uuid, integer)', AUDIT_PRUNER_ROLE);
    await q.query(`GRANT EXECUTE ON FUNCTION app_prune_audit_events(uuid, integer) TO ${APP_ROLE}`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS app_prune_audit_events(uuid, integer)`);
    await q.query(`DROP FUNCTION IF EXISTS app_due_audit_retention(integer)`);
    await q.query(`DROP POLICY IF EXISTS audit_prune_only_expired ON audit_events`);
    await q.query(`DROP POLICY IF EXISTS audit_prune_scan ON audit_events`);
    await q.query(`DROP POLICY IF EXISTS audit_prune_scan ON subscriptions`);
    await q.query(`REVOKE ALL ON audit_events, subscriptions, plans FROM ${AUDIT_PRUNER_ROLE}`);
    await q.query(`DROP INDEX IF EXISTS audit_events_resource_idx`);
    await q.query(`DROP INDEX IF EXISTS audit_events_actor_idx`);
  }
}
