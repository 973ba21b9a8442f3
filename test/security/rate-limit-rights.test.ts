import { APP_ROLE, RATE_LIMITER_ROLE } from '../../src/database/roles';
import { startTestApp, type TestApp } from '../helpers/app';
import { readAll } from '../helpers/db';

/**
 * The rate-limit counters' rights (migration 1765600000000): the service's role cannot touch the
 * counters table, only call the two SECURITY DEFINER functions; their owner is a NOLOGIN role that
 * may count and read the id columns a request is attributed by, and nothing else of a tenant.
 */
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

it('the counter functions are SECURITY DEFINER, pinned, owned by the rate limiter role, callable by the service role', async () => {
  const functions = await readAll(
    app,
    `SELECT p.proname AS name, p.pronargs AS arguments, pg_get_userbyid(p.proowner) AS owner, p.proconfig AS config, p.prosecdef AS definer,
            has_function_privilege($1, p.oid, 'EXECUTE') AS callable, has_function_privilege('public', p.oid, 'EXECUTE') AS public
     FROM pg_proc p WHERE p.proname IN ('app_rate_limit_hit', 'app_rate_limit_sweep') ORDER BY p.proname, p.pronargs`,
    [APP_ROLE],
  );
  const expected = { owner: RATE_LIMITER_ROLE, config: ['search_path=pg_catalog, pg_temp'], definer: true, callable: true, public: false };
  const counter = { ...expected, config: ['search_path=pg_catalog, pg_temp', 'plan_cache_mode=force_generic_plan', 'lock_timeout=1s'] };
  expect(functions).toEqual([
    // The eight-argument form of the previous version (a rolling deploy's older instances), then the one with a count (leases).
    { name: 'app_rate_limit_hit', arguments: 8, ...counter },
    { name: 'app_rate_limit_hit', arguments: 9, ...counter },
    { name: 'app_rate_limit_sweep', arguments: 0, ...expected },
  ]);
});

it('the service role has no right on rate_limit_counters; the rate limiter role reads ids and the plan limit only', async () => {
  const [app_] = await readAll(
    app,
    `SELECT has_table_privilege($1, 'rate_limit_counters', 'SELECT') AS s, has_table_privilege($1, 'rate_limit_counters', 'INSERT') AS i,
            has_table_privilege($1, 'rate_limit_counters', 'UPDATE') AS u, has_table_privilege($1, 'rate_limit_counters', 'DELETE') AS d`,
    [APP_ROLE],
  );
  expect(app_).toEqual({ s: false, i: false, u: false, d: false });
  const [limiter] = await readAll(
    app,
    `SELECT r.rolcanlogin AS login, r.rolsuper AS super, r.rolbypassrls AS bypass, has_schema_privilege($1, 'public', 'CREATE') AS create_in_schema,
            has_column_privilege($1, 'users', 'subject', 'SELECT') AS subject, has_column_privilege($1, 'users', 'email', 'SELECT') AS email,
            has_column_privilege($1, 'organizations', 'slug', 'SELECT') AS slug, has_column_privilege($1, 'organizations', 'name', 'SELECT') AS org_name,
            has_column_privilege($1, 'workspaces', 'id', 'SELECT') AS workspace_id, has_column_privilege($1, 'workspaces', 'name', 'SELECT') AS workspace_name,
            has_column_privilege($1, 'invitations', 'email', 'SELECT') AS invitation_email, has_column_privilege($1, 'plans', 'api_rate_limit_per_minute', 'SELECT') AS plan_limit,
            has_table_privilege($1, 'memberships', 'INSERT') AS add_members, has_table_privilege($1, 'audit_events', 'SELECT') AS audit,
            has_table_privilege($1, 'secrets', 'SELECT') AS secrets
     FROM pg_roles r WHERE r.rolname = $1`,
    [RATE_LIMITER_ROLE],
  );
  expect(limiter).toEqual({
    login: false,
    super: false,
    bypass: false,
    create_in_schema: false,
    subject: true,
    email: false,
    slug: true,
    org_name: false,
    workspace_id: true,
    workspace_name: false,
    invitation_email: false,
    plan_limit: true,
    add_members: false,
    audit: false,
    secrets: false,
  });
});

it('rate_limit_counters is unlogged and global (no organization_id)', async () => {
  const [row] = await readAll(
    app,
    `SELECT c.relpersistence AS persistence, EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'organization_id') AS tenant
     FROM pg_class c WHERE c.relname = 'rate_limit_counters' AND c.relnamespace = 'public'::regnamespace`,
  );
  expect(row).toEqual({ persistence: 'u', tenant: false });
});
