import type { MigrationInterface, QueryRunner } from 'typeorm';
import { APP_ROLE } from '../roles';

/**
 * Tables that belong to one tenant: organization_id leads their primary key, their unique keys
 * and every foreign key to another tenant table, and row-level security is enabled and forced.
 */
export const TENANT_TABLES = ['roles', 'memberships', 'workspaces', 'workspace_members', 'environments', 'organization_keys', 'audit_events'] as const;

/** The principal's organizations, from a transaction-local setting; a missing setting sees nothing. */
export const ORG_SCOPE_SQL = `string_to_array(nullif(current_setting('app.org_ids', true), ''), ',')::uuid[]`;
export const USER_SQL = `nullif(current_setting('app.user_id', true), '')::uuid`;

const ts = 'timestamptz(3) NOT NULL DEFAULT now()';

export class Foundation1763900000000 implements MigrationInterface {
  name = 'Foundation1763900000000';

  async up(q: QueryRunner): Promise<void> {
    // The role is cluster-wide: several databases (and test runs) may create it at once.
    await q.query(`
      DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${APP_ROLE}') THEN
          BEGIN
            CREATE ROLE ${APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
          EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
          END;
        END IF;
      END $$`);
    // The migrating user must be able to SET ROLE to it (a superuser can anyway).
    await q.query(`
      DO $$ BEGIN
        IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
          EXECUTE format('GRANT ${APP_ROLE} TO %I', current_user);
        END IF;
      END $$`);

    await q.query(`
      CREATE TABLE service_state (
        key text PRIMARY KEY,
        value jsonb NOT NULL,
        updated_at ${ts}
      )`);

    await q.query(`
      CREATE TABLE users (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        subject text NOT NULL,
        email text NOT NULL,
        email_verified boolean NOT NULL DEFAULT false,
        name text,
        avatar_url text,
        created_at ${ts},
        updated_at ${ts},
        CONSTRAINT users_subject_key UNIQUE (subject)
      )`);
    await q.query(`CREATE INDEX users_email_idx ON users (lower(email))`);

    await q.query(`
      CREATE TABLE organizations (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
        slug text NOT NULL CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length(slug) <= 100),
        description text,
        website text,
        logo_url text,
        industry text,
        primary_domain text,
        contact_email text,
        billing_email text,
        support_tier text NOT NULL DEFAULT 'COMMUNITY',
        status text NOT NULL DEFAULT 'ACTIVE',
        settings jsonb NOT NULL DEFAULT '{}',
        security jsonb NOT NULL DEFAULT '{}',
        branding jsonb NOT NULL DEFAULT '{}',
        banner jsonb,
        created_by uuid REFERENCES users (id) ON DELETE SET NULL,
        created_at ${ts},
        updated_at ${ts},
        deleted_at timestamptz(3),
        purge_at timestamptz(3)
      )`);
    // Case-insensitive uniqueness, soft-deleted organizations included (their slug stays reserved).
    await q.query(`CREATE UNIQUE INDEX organizations_slug_key ON organizations (lower(slug))`);

    await q.query(`
      CREATE TABLE roles (
        organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        key text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]{1,39}$'),
        name text NOT NULL,
        description text,
        is_system boolean NOT NULL DEFAULT false,
        permissions text[] NOT NULL DEFAULT '{}',
        created_at ${ts},
        updated_at ${ts},
        PRIMARY KEY (organization_id, id),
        CONSTRAINT roles_key_key UNIQUE (organization_id, key)
      )`);

    await q.query(`
      CREATE TABLE memberships (
        organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        role_key text NOT NULL,
        invited_by uuid REFERENCES users (id) ON DELETE SET NULL,
        joined_at ${ts},
        PRIMARY KEY (organization_id, id),
        CONSTRAINT memberships_user_key UNIQUE (organization_id, user_id),
        -- A membership cannot point at another tenant's role, nor outlive its role.
        CONSTRAINT memberships_role_fkey FOREIGN KEY (organization_id, role_key) REFERENCES roles (organization_id, key) ON UPDATE CASCADE
      )`);
    // At most one owner per organization, whatever runs concurrently.
    await q.query(`CREATE UNIQUE INDEX memberships_one_owner ON memberships (organization_id) WHERE role_key = 'owner'`);
    // The principal's own memberships are found by user (the only index not led by organization_id).
    await q.query(`CREATE INDEX memberships_user_idx ON memberships (user_id, organization_id)`);

    await q.query(`
      CREATE TABLE workspaces (
        organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
        slug text NOT NULL CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length(slug) <= 100),
        description text,
        is_default boolean NOT NULL DEFAULT false,
        visibility text NOT NULL DEFAULT 'ORGANIZATION',
        created_by uuid REFERENCES users (id) ON DELETE SET NULL,
        created_at ${ts},
        updated_at ${ts},
        PRIMARY KEY (organization_id, id)
      )`);
    await q.query(`CREATE UNIQUE INDEX workspaces_slug_key ON workspaces (organization_id, lower(slug))`);
    await q.query(`CREATE UNIQUE INDEX workspaces_one_default ON workspaces (organization_id) WHERE is_default`);
    await q.query(`CREATE INDEX workspaces_org_created_idx ON workspaces (organization_id, created_at, id)`);

    await q.query(`
      CREATE TABLE workspace_members (
        organization_id uuid NOT NULL,
        workspace_id uuid NOT NULL,
        user_id uuid NOT NULL,
        role text NOT NULL,
        granted_by uuid REFERENCES users (id) ON DELETE SET NULL,
        granted_at ${ts},
        PRIMARY KEY (organization_id, workspace_id, user_id),
        FOREIGN KEY (organization_id, workspace_id) REFERENCES workspaces (organization_id, id) ON DELETE CASCADE,
        -- Removing a member removes their workspace grants.
        FOREIGN KEY (organization_id, user_id) REFERENCES memberships (organization_id, user_id) ON DELETE CASCADE
      )`);

    await q.query(`
      CREATE TABLE environments (
        organization_id uuid NOT NULL,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        workspace_id uuid NOT NULL,
        name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
        slug text NOT NULL CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length(slug) <= 100),
        tier text NOT NULL,
        deployment_host text NOT NULL DEFAULT 'LOCALHOST',
        execution_backend text,
        is_active boolean NOT NULL DEFAULT true,
        cpu numeric(10, 3) NOT NULL CHECK (cpu >= 0.1),
        ram_mb integer NOT NULL CHECK (ram_mb >= 64),
        disk_gb integer NOT NULL CHECK (disk_gb >= 1),
        cloud_credentials bytea,
        created_by uuid REFERENCES users (id) ON DELETE SET NULL,
        created_at ${ts},
        updated_at ${ts},
        destroyed_at timestamptz(3),
        PRIMARY KEY (organization_id, id),
        FOREIGN KEY (organization_id, workspace_id) REFERENCES workspaces (organization_id, id) ON DELETE CASCADE
      )`);
    // A destroyed environment frees its slug.
    await q.query(`CREATE UNIQUE INDEX environments_slug_key ON environments (organization_id, workspace_id, lower(slug)) WHERE is_active`);
    await q.query(`CREATE INDEX environments_workspace_idx ON environments (organization_id, workspace_id, created_at, id)`);

    await q.query(`
      CREATE TABLE organization_keys (
        organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
        version integer NOT NULL DEFAULT 1,
        wrapped_key bytea NOT NULL,
        created_at ${ts},
        PRIMARY KEY (organization_id, version)
      )`);

    await q.query(`
      CREATE TABLE audit_events (
        organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        occurred_at timestamptz(3) NOT NULL DEFAULT clock_timestamp(),
        action text NOT NULL,
        actor_type text NOT NULL,
        actor_id text,
        actor_email text,
        actor_name text,
        workspace_id uuid,
        resource_type text NOT NULL,
        resource_id text,
        resource_name text,
        changes jsonb,
        metadata jsonb,
        ip_address text,
        user_agent text,
        request_id text,
        PRIMARY KEY (organization_id, id)
      )`);
    await q.query(`CREATE INDEX audit_events_org_time_idx ON audit_events (organization_id, occurred_at DESC, id DESC)`);

    // ---------------------------------------------------------------- row-level security
    for (const table of TENANT_TABLES) {
      await q.query(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`);
      await q.query(`
        CREATE POLICY tenant_isolation ON ${table}
          USING (organization_id = ANY (${ORG_SCOPE_SQL}))
          WITH CHECK (organization_id = ANY (${ORG_SCOPE_SQL}))`);
    }
    // A principal finds its own memberships before its organizations are known.
    await q.query(`CREATE POLICY own_memberships ON memberships FOR SELECT USING (user_id = ${USER_SQL})`);

    // organizations is global, but the service's role sees and changes only the principal's ones.
    // Not forced: the owner (migrations, the slug lookup below, background jobs) sees them all.
    await q.query(`ALTER TABLE organizations ENABLE ROW LEVEL SECURITY`);
    await q.query(`
      CREATE POLICY organization_scope ON organizations
        USING (id = ANY (${ORG_SCOPE_SQL}))
        WITH CHECK (id = ANY (${ORG_SCOPE_SQL}))`);

    // Slug derivation must know which slugs are taken across all tenants; this returns only slugs.
    await q.query(`
      CREATE FUNCTION organization_slugs_like(base text) RETURNS SETOF text
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
          SELECT lower(slug) FROM organizations
          WHERE lower(slug) = lower(base) OR lower(slug) LIKE lower(base) || '-%'
        $$`);
    await q.query(`REVOKE ALL ON FUNCTION organization_slugs_like(text) FROM PUBLIC`);

    // ---------------------------------------------------------------- grants
    await q.query(`GRANT USAGE ON SCHEMA public TO ${APP_ROLE}`);
    await q.query(`GRANT EXECUTE ON FUNCTION organization_slugs_like(text) TO ${APP_ROLE}`);
    await q.query(`GRANT SELECT ON service_state TO ${APP_ROLE}`);
    await q.query(`GRANT SELECT, INSERT, UPDATE ON users, organizations TO ${APP_ROLE}`);
    await q.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON roles, memberships, workspaces, workspace_members, environments TO ${APP_ROLE}`);
    await q.query(`GRANT SELECT, INSERT ON organization_keys TO ${APP_ROLE}`);
    // The audit trail is append-only for the service.
    await q.query(`GRANT SELECT, INSERT ON audit_events TO ${APP_ROLE}`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS organization_slugs_like(text)`);
    for (const table of ['audit_events', 'organization_keys', 'environments', 'workspace_members', 'workspaces', 'memberships', 'roles', 'organizations', 'users', 'service_state']) {
      await q.query(`DROP TABLE IF EXISTS ${table}`);
    }
  }
}
