import type { MigrationInterface, QueryRunner } from 'typeorm';
import { APP_ROLE, PURGER_ROLE } from '../roles';
import { ensureRole, giveFunctionTo } from './1764600000000-hardening';

/** What makes a soft-deleted organization due for its purge, compared with the database's clock. */
const DUE = `status = 'DELETED' AND purge_at IS NOT NULL AND purge_at <= now()`;

/**
 * Soft deletion and purge of organizations (SPEC §5). The columns (`status`, `deleted_at`,
 * `purge_at`) exist since the foundation; this adds:
 * - an index of the soft-deleted organizations by due time, for the purge job;
 * - `tenant_service_purger`, a NOLOGIN role that may read only `id`, `status`, `purge_at` of
 *   organizations and delete an organization **only once it is due** (a restrictive policy: the
 *   database itself refuses an early purge, whatever the code asks). It owns two SECURITY DEFINER
 *   functions with a pinned search_path:
 *   - `organizations_due_for_purge(limit)`: the ids of due organizations, across tenants (the job
 *     runs before any organization is in scope), nothing else;
 *   - `app_purge_organization(id)`: deletes that organization if it is due and in the
 *     transaction's scope (the usual `organization_scope` policy still applies to the purger).
 *     Every tenant row below it goes with it through the `ON DELETE CASCADE` foreign keys, which
 *     PostgreSQL runs with the rights of each table's owner, the audit trail included (the
 *     service's own role can never delete audit events).
 */
export class OrganizationDeletion1765200000000 implements MigrationInterface {
  name = 'OrganizationDeletion1765200000000';

  async up(q: QueryRunner): Promise<void> {
    await ensureRole(q, PURGER_ROLE);
    await q.query(`CREATE INDEX organizations_purge_due_idx ON organizations (purge_at) WHERE status = 'DELETED'`);

    await q.query(`GRANT SELECT (id, status, purge_at) ON organizations TO ${PURGER_ROLE}`);
    await q.query(`GRANT DELETE ON organizations TO ${PURGER_ROLE}`);
    // Sees due organizations only (across tenants, for the due list); deletes one only when it is
    // due AND in the transaction's scope (organization_scope, the permissive policy for deletes).
    await q.query(`CREATE POLICY purge_due ON organizations FOR SELECT TO ${PURGER_ROLE} USING (${DUE})`);
    await q.query(`CREATE POLICY purge_only_due ON organizations AS RESTRICTIVE FOR DELETE TO ${PURGER_ROLE} USING (${DUE})`);

    await q.query(`
      CREATE FUNCTION organizations_due_for_purge(p_limit integer) RETURNS SETOF uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          SELECT o.id FROM public.organizations o
          WHERE o.status = 'DELETED' AND o.purge_at IS NOT NULL AND o.purge_at <= now()
          ORDER BY o.purge_at, o.id
          LIMIT least(greatest(p_limit, 0), 1000)
        $$`);
    await giveFunctionTo(q, 'organizations_due_for_purge(integer)', PURGER_ROLE);
    await q.query(`GRANT EXECUTE ON FUNCTION organizations_due_for_purge(integer) TO ${APP_ROLE}`);

    await q.query(`
      CREATE FUNCTION app_purge_organization(p_id uuid) RETURNS boolean
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          WITH gone AS (
            DELETE FROM public.organizations o
            WHERE o.id = p_id AND o.status = 'DELETED' AND o.purge_at IS NOT NULL AND o.purge_at <= now()
            RETURNING o.id
          )
          SELECT EXISTS (SELECT 1 FROM gone)
        $$`);
    await giveFunctionTo(q, 'app_purge_organization(uuid)', PURGER_ROLE);
    await q.query(`GRANT EXECUTE ON FUNCTION app_purge_organization(uuid) TO ${APP_ROLE}`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS app_purge_organization(uuid)`);
    await q.query(`DROP FUNCTION IF EXISTS organizations_due_for_purge(integer)`);
    await q.query(`DROP POLICY IF EXISTS purge_only_due ON organizations`);
    await q.query(`DROP POLICY IF EXISTS purge_due ON organizations`);
    await q.query(`REVOKE ALL ON organizations FROM ${PURGER_ROLE}`);
    await q.query(`DROP INDEX IF EXISTS organizations_purge_due_idx`);
  }
}
