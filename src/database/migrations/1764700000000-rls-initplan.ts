import type { MigrationInterface, QueryRunner } from 'typeorm';
import { APP_ROLE } from '../roles';

/**
 * The scope as a scalar sub-select: PostgreSQL computes it once per statement (an InitPlan)
 * instead of parsing the setting again for every row a policy checks.
 */
// The outer no-op cast makes `= ANY (…)` read an array expression, not a sub-query of rows.
export const ORG_SCOPE_INITPLAN = `(SELECT string_to_array(nullif(current_setting('app.org_ids', true), ''), ',')::uuid[])::uuid[]`;
export const USER_INITPLAN = `(SELECT nullif(current_setting('app.user_id', true), '')::uuid)`;

const TENANT_TABLES = ['roles', 'memberships', 'workspaces', 'workspace_members', 'environments', 'organization_keys', 'audit_events'];

/**
 * Row-level security at the speed of a plain query:
 * - every policy reads the scope through an InitPlan (once per statement, not once per row);
 * - slugs are lowercase by their CHECK constraint, so their unique indexes are on the column
 *   itself: `slug = $1` is an index condition PostgreSQL may apply before the policy (texteq is
 *   leakproof; `lower(slug)` is not, and made it check the policy on every organization first).
 * Same policies, same meaning: only how often the scope is computed changes. Setting the scope
 * switches role only when needed.
 */
export class RlsInitplan1764700000000 implements MigrationInterface {
  name = 'RlsInitplan1764700000000';

  async up(q: QueryRunner): Promise<void> {
    for (const table of TENANT_TABLES) {
      await q.query(`ALTER POLICY tenant_isolation ON ${table}
        USING (organization_id = ANY (${ORG_SCOPE_INITPLAN})) WITH CHECK (organization_id = ANY (${ORG_SCOPE_INITPLAN}))`);
    }
    await q.query(`ALTER POLICY own_memberships ON memberships USING (user_id = ${USER_INITPLAN})`);
    await q.query(`ALTER POLICY organization_scope ON organizations USING (id = ANY (${ORG_SCOPE_INITPLAN})) WITH CHECK (id = ANY (${ORG_SCOPE_INITPLAN}))`);
    await q.query(`
      ALTER POLICY users_visible ON users
        USING (id = ${USER_INITPLAN}
          OR EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = users.id AND m.organization_id = ANY (${ORG_SCOPE_INITPLAN})))`);

    await q.query(`ALTER TABLE organizations ADD CONSTRAINT organizations_slug_lowercase CHECK (slug = lower(slug))`);
    await q.query(`DROP INDEX organizations_slug_key`);
    await q.query(`CREATE UNIQUE INDEX organizations_slug_key ON organizations (slug)`);
    await q.query(`DROP INDEX workspaces_slug_key`);
    await q.query(`CREATE UNIQUE INDEX workspaces_slug_key ON workspaces (organization_id, slug)`);
    await q.query(`DROP INDEX environments_slug_key`);
    await q.query(`CREATE UNIQUE INDEX environments_slug_key ON environments (organization_id, workspace_id, slug) WHERE is_active`);
    await q.query(`
      CREATE OR REPLACE FUNCTION organization_slugs_taken(candidates text[]) RETURNS SETOF text
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          SELECT o.slug FROM public.organizations o WHERE cardinality(candidates) <= 100 AND o.slug = ANY (candidates)
        $$`);
    await q.query(`GRANT EXECUTE ON FUNCTION organization_slugs_taken(text[]) TO ${APP_ROLE}`);
    // Switching role costs a catalog check: only when the transaction is not the service's role yet
    // (opening a transaction sets the scope three times).
    await q.query(`
      CREATE OR REPLACE FUNCTION app_set_scope(p_request_id text, p_user_id text, p_org_ids text) RETURNS void
        LANGUAGE sql VOLATILE AS $$
          SELECT CASE WHEN current_user <> '${APP_ROLE}' THEN set_config('role', '${APP_ROLE}', true) END,
                 set_config('app.request_id', coalesce(p_request_id, ''), true),
                 set_config('app.user_id', coalesce(p_user_id, ''), true), set_config('app.org_ids', coalesce(p_org_ids, ''), true)
        $$`);
  }

  async down(): Promise<void> {
    throw new Error('RlsInitplan1764700000000 is not reversible: restore from a backup');
  }
}
