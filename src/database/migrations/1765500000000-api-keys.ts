import type { MigrationInterface, QueryRunner } from 'typeorm';
import { API_KEY_LOOKUP_ROLE, APP_ROLE } from '../roles';
import { ensureRole, giveFunctionTo } from './1764600000000-hardening';
import { ORG_SCOPE_INITPLAN } from './1764700000000-rls-initplan';

/** The tenant tables this migration adds (row-level security forced). */
export const API_KEY_TABLES = ['api_keys'] as const;

/** What a lookup returns: what authentication needs, nothing else (never the hash). */
const LOOKUP_COLUMNS = `organization_id uuid, id uuid, name text, scopes text[]`;
/**
 * A key authenticates while it is neither revoked nor expired and its organization is neither
 * soft-deleted nor suspended (its subscription SUSPENDED): SPEC §2, checked on every request.
 */
const LOOKUP_SELECT = `k.organization_id, k.id, k.name, k.scopes
  FROM public.api_keys k JOIN public.organizations o ON o.id = k.organization_id
  WHERE k.revoked_at IS NULL AND k.expires_at > now() AND o.status <> 'DELETED'
    AND NOT EXISTS (SELECT 1 FROM public.subscriptions s WHERE s.organization_id = k.organization_id AND s.status = 'SUSPENDED')`;

/**
 * API keys (SPEC §2) and the service's own JWT signing keys (SPEC §7, JWKS):
 * - `api_keys`, a tenant table: the secret is stored only as its SHA-256 (`secret_hash`, 32 bytes);
 *   the service's role may insert, read, and update only `revoked_at` and `last_used_at`.
 * - Two SECURITY DEFINER lookups for the moment the tenant is not known yet (a bearer key, the
 *   `sub` of an exchanged token), owned by a NOLOGIN role that may read only the columns they need.
 * - `app_open_transaction` learns the `apiKey` principal: it authenticates the key through the
 *   lookups in the same round trip that opens the transaction (so every request checks revocation,
 *   expiry and the organization's state) and scopes the transaction to the key's organization.
 * - `service_signing_keys`, a global infrastructure table shared by every instance: ES256 key pairs,
 *   the private half sealed by SECRETS_MASTER_KEY (src/crypto/envelope.ts); `retires_at` ends a
 *   rotated-out key's overlap.
 */
/** `app_open_transaction` as this migration leaves it (1766100000000's down restores it). */
export const OPEN_TRANSACTION = `
      CREATE OR REPLACE FUNCTION app_open_transaction(p_request_id text, p_principal jsonb) RETURNS jsonb
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
          u record;
          k record;
          roles text;
          scope text;
        BEGIN
          PERFORM app_set_scope(p_request_id, NULL, NULL);
          CASE p_principal->>'kind'
            WHEN 'user' THEN
              SELECT * INTO u FROM app_provision_user(p_principal->>'subject', p_principal->>'email',
                (p_principal->>'emailVerified')::boolean, p_principal->>'name', p_principal->>'picture');
              PERFORM app_set_scope(p_request_id, u.id::text, NULL);
              -- Read through the own-memberships policy: the organizations are not known yet.
              SELECT string_agg(m.organization_id::text || ':' || m.role_key, ','), string_agg(m.organization_id::text, ',')
                INTO roles, scope FROM memberships m WHERE m.user_id = u.id;
              PERFORM app_set_scope(p_request_id, u.id::text, scope);
              RETURN jsonb_build_object('user', to_jsonb(u), 'roles', coalesce(roles, ''));
            WHEN 'system' THEN
              PERFORM app_set_scope(p_request_id, NULL, (p_principal->>'organizationId')::uuid::text);
              RETURN jsonb_build_object('roles', '');
            WHEN 'apiKey' THEN
              -- Authenticated on every request: a revoked or expired key, or one of a deleted or
              -- suspended organization, finds nothing here (and the request is UNAUTHENTICATED).
              IF p_principal ? 'hash' THEN
                SELECT * INTO k FROM api_key_by_hash(decode(p_principal->>'hash', 'hex'));
              ELSE
                SELECT * INTO k FROM api_key_by_id((p_principal->>'id')::uuid);
              END IF;
              IF k.id IS NULL THEN
                RETURN jsonb_build_object('roles', '', 'apiKey', NULL);
              END IF;
              PERFORM app_set_scope(p_request_id, NULL, k.organization_id::text);
              RETURN jsonb_build_object('roles', '', 'apiKey', jsonb_build_object('id', k.id, 'organizationId', k.organization_id, 'name', k.name, 'scopes', to_jsonb(k.scopes)));
            ELSE
              RETURN jsonb_build_object('roles', '');
          END CASE;
        END $$`;

export class ApiKeys1765500000000 implements MigrationInterface {
  name = 'ApiKeys1765500000000';

  async up(q: QueryRunner): Promise<void> {
    await ensureRole(q, API_KEY_LOOKUP_ROLE);
    await q.query(`
      CREATE TABLE api_keys (
        organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
        description text CHECK (char_length(description) <= 2000),
        prefix text NOT NULL,
        secret_hash bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
        scopes text[] NOT NULL,
        created_by uuid REFERENCES users (id) ON DELETE SET NULL,
        created_by_api_key uuid,
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        expires_at timestamptz(3) NOT NULL,
        last_used_at timestamptz(3),
        revoked_at timestamptz(3),
        PRIMARY KEY (organization_id, id)
      )`);
    await q.query(`CREATE UNIQUE INDEX api_keys_secret_hash_key ON api_keys (organization_id, secret_hash)`);
    // The lookups before the tenant is known: by hash (a bearer key), by id (an exchanged token).
    await q.query(`CREATE INDEX api_keys_secret_hash_idx ON api_keys (secret_hash)`);
    await q.query(`CREATE INDEX api_keys_id_idx ON api_keys (id)`);
    await q.query(`CREATE INDEX api_keys_org_created_idx ON api_keys (organization_id, created_at, id)`);
    await q.query(`ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE api_keys FORCE ROW LEVEL SECURITY`);
    await q.query(`
      CREATE POLICY tenant_isolation ON api_keys
        USING (organization_id = ANY (${ORG_SCOPE_INITPLAN})) WITH CHECK (organization_id = ANY (${ORG_SCOPE_INITPLAN}))`);
    await q.query(`GRANT SELECT, INSERT ON api_keys TO ${APP_ROLE}`);
    await q.query(`GRANT UPDATE (revoked_at, last_used_at) ON api_keys TO ${APP_ROLE}`);

    // ------------------------------------------------------------------ lookups before the tenant is known
    await q.query(`GRANT SELECT (organization_id, id, name, scopes, secret_hash, expires_at, revoked_at) ON api_keys TO ${API_KEY_LOOKUP_ROLE}`);
    await q.query(`GRANT SELECT (id, status) ON organizations TO ${API_KEY_LOOKUP_ROLE}`);
    await q.query(`GRANT SELECT (organization_id, status) ON subscriptions TO ${API_KEY_LOOKUP_ROLE}`);
    await q.query(`CREATE POLICY api_key_lookup ON api_keys FOR SELECT TO ${API_KEY_LOOKUP_ROLE} USING (true)`);
    await q.query(`CREATE POLICY api_key_lookup ON organizations FOR SELECT TO ${API_KEY_LOOKUP_ROLE} USING (true)`);
    await q.query(`CREATE POLICY api_key_lookup ON subscriptions FOR SELECT TO ${API_KEY_LOOKUP_ROLE} USING (true)`);
    await q.query(`
      CREATE FUNCTION api_key_by_hash(p_hash bytea) RETURNS TABLE (${LOOKUP_COLUMNS})
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          SELECT ${LOOKUP_SELECT} AND octet_length(p_hash) = 32 AND k.secret_hash = p_hash
        $$`);
    await giveFunctionTo(q, 'api_key_by_hash(bytea)', API_KEY_LOOKUP_ROLE);
    await q.query(`GRANT EXECUTE ON FUNCTION api_key_by_hash(bytea) TO ${APP_ROLE}`);
    await q.query(`
      CREATE FUNCTION api_key_by_id(p_id uuid) RETURNS TABLE (${LOOKUP_COLUMNS})
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          SELECT ${LOOKUP_SELECT} AND k.id = p_id
        $$`);
    await giveFunctionTo(q, 'api_key_by_id(uuid)', API_KEY_LOOKUP_ROLE);
    await q.query(`GRANT EXECUTE ON FUNCTION api_key_by_id(uuid) TO ${APP_ROLE}`);

    // ------------------------------------------------------------------ the apiKey principal
    await q.query(OPEN_TRANSACTION);

    // ------------------------------------------------------------------ the service's signing keys
    await q.query(`
      CREATE TABLE service_signing_keys (
        kid text PRIMARY KEY,
        algorithm text NOT NULL CHECK (algorithm = 'ES256'),
        public_jwk jsonb NOT NULL,
        sealed_private_key bytea NOT NULL,
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        retires_at timestamptz(3)
      )`);
    // Infrastructure shared by every instance (no tenant data): the service's role reads, adds and
    // retires keys; the private half is only ever stored sealed by the master key.
    await q.query(`GRANT SELECT, INSERT, DELETE ON service_signing_keys TO ${APP_ROLE}`);
    await q.query(`GRANT UPDATE (retires_at, sealed_private_key) ON service_signing_keys TO ${APP_ROLE}`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS service_signing_keys`);
    await q.query(`DROP FUNCTION IF EXISTS api_key_by_id(uuid)`);
    await q.query(`DROP FUNCTION IF EXISTS api_key_by_hash(bytea)`);
    await q.query(`DROP POLICY IF EXISTS api_key_lookup ON subscriptions`);
    await q.query(`DROP POLICY IF EXISTS api_key_lookup ON organizations`);
    await q.query(`REVOKE ALL ON organizations, subscriptions FROM ${API_KEY_LOOKUP_ROLE}`);
    await q.query(`DROP TABLE IF EXISTS api_keys`);
  }
}
