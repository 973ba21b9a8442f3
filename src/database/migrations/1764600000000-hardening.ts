import type { MigrationInterface, QueryRunner } from 'typeorm';
import { APP_ROLE, PROVISIONER_ROLE, SLUG_LOOKUP_ROLE } from '../roles';
import { ORG_SCOPE_SQL, USER_SQL } from './1763900000000-foundation';

/** Creates a NOLOGIN role once per cluster (test databases share it) that the migrating user may act as. */
export async function ensureRole(q: QueryRunner, role: string): Promise<void> {
  await q.query(`
    DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${role}') THEN
        BEGIN
          CREATE ROLE ${role} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
      END IF;
      IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT ${role} TO %I', current_user);
      END IF;
    END $$`);
}

/**
 * Gives a SECURITY DEFINER function to a role that holds only the rights the function needs.
 * A non-superuser can only hand a function to a role that may create in its schema: the right
 * is granted for the change of owner and taken back at once.
 */
export async function giveFunctionTo(q: QueryRunner, signature: string, role: string): Promise<void> {
  await q.query(`GRANT CREATE ON SCHEMA public TO ${role}`);
  await q.query(`ALTER FUNCTION ${signature} OWNER TO ${role}`);
  await q.query(`REVOKE CREATE ON SCHEMA public FROM ${role}`);
  await q.query(`REVOKE ALL ON FUNCTION ${signature} FROM PUBLIC`);
}

/**
 * Hardening of the core:
 * - `users` gets row-level security (a principal sees itself and the people it shares an
 *   organization with) and the service's role can no longer write it: provisioning goes through
 *   one SECURITY DEFINER function owned by a role that may touch nothing else.
 * - System roles cannot be changed or deleted through the service's role, and a role key can no
 *   longer be renamed under its memberships (the old ON UPDATE CASCADE could move the owner role).
 * - The cross-tenant slug lookup answers only about the candidate slugs it is given, with a
 *   pinned search_path, owned by a role that may read only `organizations.slug`.
 * - The row-level-security scope of a transaction is set in one place: `app_set_scope`, called
 *   by `app_open_transaction`, which also provisions a user principal in the same round trip.
 */
export class Hardening1764600000000 implements MigrationInterface {
  name = 'Hardening1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await ensureRole(q, PROVISIONER_ROLE);
    await ensureRole(q, SLUG_LOOKUP_ROLE);

    // ------------------------------------------------------------------ users
    await q.query(`REVOKE INSERT, UPDATE, DELETE ON users FROM ${APP_ROLE}`);
    await q.query(`ALTER TABLE users ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE users FORCE ROW LEVEL SECURITY`);
    await q.query(`
      CREATE POLICY users_visible ON users FOR SELECT TO ${APP_ROLE}
        USING (id = ${USER_SQL}
          OR EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = users.id AND m.organization_id = ANY (${ORG_SCOPE_SQL})))`);
    await q.query(`CREATE POLICY users_provisioning ON users TO ${PROVISIONER_ROLE} USING (true) WITH CHECK (true)`);
    // The provisioner may add users and refresh their profile; nobody but migrations changes `subject`.
    await q.query(`GRANT SELECT, INSERT ON users TO ${PROVISIONER_ROLE}`);
    await q.query(`GRANT UPDATE (email, email_verified, name, avatar_url, updated_at) ON users TO ${PROVISIONER_ROLE}`);
    await q.query(`
      CREATE FUNCTION app_provision_user(p_subject text, p_email text, p_email_verified boolean, p_name text, p_picture text)
        RETURNS TABLE (id uuid, email text, email_verified boolean, name text, created boolean)
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
          u record;
          inserted boolean := false;
        BEGIN
          SELECT t.id, t.email, t.email_verified, t.name, t.avatar_url INTO u FROM public.users t WHERE t.subject = p_subject;
          IF NOT FOUND THEN
            INSERT INTO public.users AS t (subject, email, email_verified, name, avatar_url)
              VALUES (p_subject, p_email, p_email_verified, p_name, p_picture)
              ON CONFLICT (subject) DO UPDATE SET email = EXCLUDED.email
              RETURNING t.id, t.email, t.email_verified, t.name, t.avatar_url, (t.xmax = 0) AS fresh INTO u;
            inserted := u.fresh;
          END IF;
          -- Claims refresh the profile; an absent name or picture keeps what is stored.
          IF u.email IS DISTINCT FROM p_email OR u.email_verified IS DISTINCT FROM p_email_verified
             OR (p_name IS NOT NULL AND p_name IS DISTINCT FROM u.name)
             OR (p_picture IS NOT NULL AND p_picture IS DISTINCT FROM u.avatar_url) THEN
            UPDATE public.users t SET email = p_email, email_verified = p_email_verified,
                name = COALESCE(p_name, t.name), avatar_url = COALESCE(p_picture, t.avatar_url), updated_at = now()
              WHERE t.id = u.id
              RETURNING t.id, t.email, t.email_verified, t.name, t.avatar_url INTO u;
          END IF;
          RETURN QUERY SELECT u.id, u.email, u.email_verified, u.name, inserted;
        END $$`);
    await giveFunctionTo(q, 'app_provision_user(text, text, boolean, text, text)', PROVISIONER_ROLE);
    await q.query(`GRANT EXECUTE ON FUNCTION app_provision_user(text, text, boolean, text, text) TO ${APP_ROLE}`);

    // ------------------------------------------------------------------ roles
    await q.query(`CREATE POLICY system_roles_fixed_update ON roles AS RESTRICTIVE FOR UPDATE TO ${APP_ROLE} USING (NOT is_system) WITH CHECK (NOT is_system)`);
    await q.query(`CREATE POLICY system_roles_fixed_delete ON roles AS RESTRICTIVE FOR DELETE TO ${APP_ROLE} USING (NOT is_system)`);
    await q.query(`ALTER TABLE memberships DROP CONSTRAINT memberships_role_fkey`);
    await q.query(`
      ALTER TABLE memberships ADD CONSTRAINT memberships_role_fkey
        FOREIGN KEY (organization_id, role_key) REFERENCES roles (organization_id, key)`);

    // ------------------------------------------------------------------ slugs
    await q.query(`DROP FUNCTION organization_slugs_like(text)`);
    await q.query(`GRANT SELECT (slug) ON organizations TO ${SLUG_LOOKUP_ROLE}`);
    await q.query(`CREATE POLICY slug_lookup ON organizations FOR SELECT TO ${SLUG_LOOKUP_ROLE} USING (true)`);
    await q.query(`
      CREATE FUNCTION organization_slugs_taken(candidates text[]) RETURNS SETOF text
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          SELECT lower(o.slug) FROM public.organizations o
          WHERE cardinality(candidates) <= 100 AND lower(o.slug) = ANY (candidates)
        $$`);
    await giveFunctionTo(q, 'organization_slugs_taken(text[])', SLUG_LOOKUP_ROLE);
    await q.query(`GRANT EXECUTE ON FUNCTION organization_slugs_taken(text[]) TO ${APP_ROLE}`);

    // ------------------------------------------------------------------ the scope of a transaction
    // The only code that sets the settings the policies read. Transaction-local (is_local): they
    // vanish at COMMIT or ROLLBACK and never reach the next user of a pooled connection, and a
    // ROLLBACK TO SAVEPOINT undoes a change made after the savepoint.
    await q.query(`
      CREATE FUNCTION app_set_scope(p_request_id text, p_user_id text, p_org_ids text) RETURNS void
        LANGUAGE sql VOLATILE AS $$
          SELECT set_config('role', '${APP_ROLE}', true), set_config('app.request_id', coalesce(p_request_id, ''), true),
                 set_config('app.user_id', coalesce(p_user_id, ''), true), set_config('app.org_ids', coalesce(p_org_ids, ''), true)
        $$`);
    // Opens a transaction for a principal in one round trip: switches to the service's role
    // (from here on row-level security applies), provisions a user principal just in time and
    // reads its memberships, then sets the scope. Returns what the service needs to know.
    await q.query(`
      CREATE FUNCTION app_open_transaction(p_request_id text, p_principal jsonb) RETURNS jsonb
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
          u record;
          roles jsonb;
        BEGIN
          PERFORM app_set_scope(p_request_id, NULL, NULL);
          CASE p_principal->>'kind'
            WHEN 'user' THEN
              SELECT * INTO u FROM app_provision_user(p_principal->>'subject', p_principal->>'email',
                (p_principal->>'emailVerified')::boolean, p_principal->>'name', p_principal->>'picture');
              PERFORM app_set_scope(p_request_id, u.id::text, NULL);
              -- Read through the own-memberships policy: the organizations are not known yet.
              SELECT coalesce(jsonb_object_agg(m.organization_id, m.role_key), '{}'::jsonb) INTO roles
                FROM memberships m WHERE m.user_id = u.id;
              PERFORM app_set_scope(p_request_id, u.id::text, (SELECT string_agg(k, ',') FROM jsonb_object_keys(roles) AS k));
              RETURN jsonb_build_object('user', to_jsonb(u), 'roles', roles);
            WHEN 'system' THEN
              PERFORM app_set_scope(p_request_id, NULL, (p_principal->>'organizationId')::uuid::text);
              RETURN jsonb_build_object('roles', '{}'::jsonb);
            ELSE
              RETURN jsonb_build_object('roles', '{}'::jsonb);
          END CASE;
        END $$`);
    await q.query(`REVOKE ALL ON FUNCTION app_open_transaction(text, jsonb) FROM PUBLIC`);
    await q.query(`REVOKE ALL ON FUNCTION app_set_scope(text, text, text) FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION app_set_scope(text, text, text) TO ${APP_ROLE}`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS app_open_transaction(text, jsonb)`);
    await q.query(`DROP FUNCTION IF EXISTS app_set_scope(text, text, text)`);
    await q.query(`DROP FUNCTION IF EXISTS organization_slugs_taken(text[])`);
    await q.query(`DROP FUNCTION IF EXISTS app_provision_user(text, text, boolean, text, text)`);
    await q.query(`DROP POLICY IF EXISTS slug_lookup ON organizations`);
    await q.query(`DROP POLICY IF EXISTS system_roles_fixed_update ON roles`);
    await q.query(`DROP POLICY IF EXISTS system_roles_fixed_delete ON roles`);
    await q.query(`DROP POLICY IF EXISTS users_visible ON users`);
    await q.query(`DROP POLICY IF EXISTS users_provisioning ON users`);
    await q.query(`ALTER TABLE users NO FORCE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE users DISABLE ROW LEVEL SECURITY`);
    await q.query(`GRANT INSERT, UPDATE ON users TO ${APP_ROLE}`);
  }
}
