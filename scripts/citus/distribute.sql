-- Turns the tenant service's schema into a Citus cluster's: the tenant tables become distributed
-- tables sharded on organization_id and co-located (all rows of one organization on one node, so
-- its joins, foreign keys and unique checks stay local), the global tables reference tables
-- (a copy on every node).
--
-- For the day Citus is installed (it is not among this machine's packages, so this script has
-- never run against Citus here). Run it once, with psql, as the owner of the schema, on the
-- coordinator of a cluster whose workers are added, after the service's migrations have run and
-- before traffic:
--
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f scripts/citus/distribute.sql
--
-- test/integration/database/citus-layout.test.ts parses this file on a freshly migrated
-- database: every table and foreign key it names must exist, every tenant table (any table with
-- organization_id) must be distributed here and every other one (but `migrations`,
-- `rate_limit_counters` and `membership_scopes_due`) be a reference table, and the keys must
-- carry organization_id as below. It also runs the check of step 1.
--
-- Each call below is atomic on its own (Citus copies a table's rows to its shards in its own
-- transaction); ON_ERROR_STOP stops at the first failure, which can then be fixed and the rest run.

-- 1. The rule Citus needs, checked before anything moves: each foreign key between tenant tables
--    includes organization_id on both sides, in the same position (the shard key), so that a row
--    can only point at rows of its own organization, on its own shard.
DO $$
DECLARE
  fk text;
  tenant_fks text[] := ARRAY[
    'memberships_role_fkey',                                -- memberships (organization_id, role_key) → roles (organization_id, key)
    'workspace_members_organization_id_workspace_id_fkey',  -- workspace_members → workspaces (organization_id, id)
    'workspace_members_organization_id_user_id_fkey',       -- workspace_members → memberships (organization_id, user_id)
    'environments_organization_id_workspace_id_fkey',       -- environments → workspaces (organization_id, id)
    'invitations_role_fkey',                                -- invitations (organization_id, role_key) → roles (organization_id, key)
    'secrets_organization_id_workspace_id_fkey',            -- secrets → workspaces (organization_id, id)
    'notification_preferences_organization_id_user_id_fkey',      -- notification_preferences → memberships (organization_id, user_id)
    'notification_member_settings_organization_id_user_id_fkey',  -- notification_member_settings → memberships (organization_id, user_id)
    'notifications_organization_id_member_user_id_fkey',          -- notifications → memberships (organization_id, user_id)
    'notifications_organization_id_invitation_id_fkey',           -- notifications → invitations (organization_id, id)
    'notification_digest_items_organization_id_user_id_fkey'      -- notification_digest_items → memberships (organization_id, user_id)
  ];
BEGIN
  FOREACH fk IN ARRAY tenant_fks LOOP
    IF NOT EXISTS (
      SELECT 1
      FROM pg_constraint c
      JOIN LATERAL unnest(c.conkey, c.confkey) AS k(local_attnum, referenced_attnum) ON true
      JOIN pg_attribute l ON l.attrelid = c.conrelid AND l.attnum = k.local_attnum
      JOIN pg_attribute r ON r.attrelid = c.confrelid AND r.attnum = k.referenced_attnum
      WHERE c.conname = fk AND c.contype = 'f' AND c.connamespace = 'public'::regnamespace
        AND l.attname = 'organization_id' AND r.attname = 'organization_id'
    ) THEN
      RAISE EXCEPTION 'foreign key % is missing or does not pair organization_id with organization_id', fk;
    END IF;
  END LOOP;
END
$$;

-- 2. Global tables: reference tables, in foreign-key order (organizations.created_by → users).
--    `migrations` stays a local table of the coordinator, where the service runs its migrations;
--    so does `rate_limit_counters` (UNLOGGED, written by every request, never joined with another
--    table: a reference table would replicate each count to every node), and so does
--    `membership_scopes_due` (UNLOGGED: a transaction's marks of the users whose
--    `membership_scopes` row it must settle, gone by its COMMIT). To verify on the day: where
--    Citus runs the triggers of `memberships` (on the workers' shards, with
--    `citus.enable_unsafe_triggers`), that table must exist there too.
SELECT create_reference_table('users');
SELECT create_reference_table('organizations');
SELECT create_reference_table('service_state');
SELECT create_reference_table('plans');
-- The service's JWT signing keys: infrastructure every instance reads (no organization_id).
SELECT create_reference_table('service_signing_keys');
-- Each user's organizations and role keys (no organization_id: one row per user), which the
-- session's opening reads; kept by triggers on `memberships` (migration 1766500000000), which
-- Citus runs on a distributed table's shards only with `citus.enable_unsafe_triggers` on. To verify
-- on the day: that the deferred trigger, fired on a worker, writes this reference table in the
-- transaction of the membership's change.
SELECT create_reference_table('membership_scopes');

-- 3. Tenant tables: distributed on organization_id, all in one co-location group (that of
--    `roles`), in foreign-key order: a table is distributed after the tables it references.
--    Their foreign keys to `organizations` and `users` point at reference tables, which Citus allows.
SELECT create_distributed_table('roles', 'organization_id');
SELECT create_distributed_table('memberships', 'organization_id', colocate_with => 'roles');
SELECT create_distributed_table('workspaces', 'organization_id', colocate_with => 'roles');
SELECT create_distributed_table('workspace_members', 'organization_id', colocate_with => 'roles');
SELECT create_distributed_table('environments', 'organization_id', colocate_with => 'roles');
SELECT create_distributed_table('organization_keys', 'organization_id', colocate_with => 'roles');
SELECT create_distributed_table('audit_events', 'organization_id', colocate_with => 'roles');
SELECT create_distributed_table('feature_flag_overrides', 'organization_id', colocate_with => 'roles');
SELECT create_distributed_table('invitations', 'organization_id', colocate_with => 'roles');
SELECT create_distributed_table('email_outbox', 'organization_id', colocate_with => 'roles');
SELECT create_distributed_table('notification_events', 'organization_id', colocate_with => 'roles');
SELECT create_distributed_table('subscriptions', 'organization_id', colocate_with => 'roles');
SELECT create_distributed_table('billing_webhook_events', 'organization_id', colocate_with => 'roles');
SELECT create_distributed_table('secrets', 'organization_id', colocate_with => 'roles');
SELECT create_distributed_table('api_keys', 'organization_id', colocate_with => 'roles');
SELECT create_distributed_table('notification_defaults', 'organization_id', colocate_with => 'roles');
SELECT create_distributed_table('notification_preferences', 'organization_id', colocate_with => 'roles');
SELECT create_distributed_table('notification_member_settings', 'organization_id', colocate_with => 'roles');
SELECT create_distributed_table('notifications', 'organization_id', colocate_with => 'roles');
SELECT create_distributed_table('notification_digest_items', 'organization_id', colocate_with => 'roles');
