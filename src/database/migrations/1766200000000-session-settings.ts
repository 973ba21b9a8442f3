import type { MigrationInterface, QueryRunner } from 'typeorm';
import { APP_ROLE } from '../roles';
import { OPEN_SESSION } from './1766100000000-open-session';

/**
 * One step of the scope as `app_set_scope` takes it (the service's role unless already in it, the
 * request, the user, the organizations), written out as set_config calls of one PERFORM.
 */
const scope = (requestId: string, userId: string, organizations: string, switchRole = false) =>
  `PERFORM ${switchRole ? `CASE WHEN current_user <> '${APP_ROLE}' THEN set_config('role', '${APP_ROLE}', true) END, ` : ''}` +
  `set_config('app.request_id', coalesce(${requestId}, ''), true), set_config('app.user_id', coalesce(${userId}, ''), true), ` +
  `set_config('app.org_ids', coalesce(${organizations}, ''), true);`;

/**
 * `app_open_session` sets the transaction's role and settings with set_config itself instead of
 * calling `app_set_scope` three times. Called from PL/pgSQL, that SQL function cannot be inlined
 * (it answers several columns), so every call ran it through a new executor that parsed and
 * planned its body again: about a fifth of the bootstrap's PostgreSQL time, on every request
 * (the bench user of 200 organizations, `BEGIN` + bootstrap + `COMMIT` from one connection,
 * PostgreSQL's CPU per transaction: about 0.6 → 0.47 ms). The steps, their order and the answer
 * are those of migration 1766100000000: the role switched first (the provisioning function is
 * executable by the service's role), the user's id set for the own-memberships policy, then the
 * scope; every setting transaction-local. `app_set_scope` stays for the other callers.
 */
const OPEN_SESSION_SETTINGS = `
CREATE OR REPLACE FUNCTION app_open_session(p_request_id text, p_principal jsonb) RETURNS jsonb
  LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  u record;
  k record;
  organizations text;
  roles text;
BEGIN
  ${scope('p_request_id', 'NULL', 'NULL', true)}
  CASE p_principal->>'kind'
    WHEN 'user' THEN
      SELECT * INTO u FROM app_provision_user(p_principal->>'subject', p_principal->>'email',
        (p_principal->>'emailVerified')::boolean, p_principal->>'name', p_principal->>'picture');
      ${scope('p_request_id', 'u.id::text', 'NULL')}
      -- Read through the own-memberships policy: the organizations are not known yet.
      SELECT string_agg(m.organization_id::text, ','), string_agg(m.role_key, ',')
        INTO organizations, roles FROM memberships m WHERE m.user_id = u.id;
      ${scope('p_request_id', 'u.id::text', 'organizations')}
      RETURN jsonb_build_object('user', to_jsonb(u), 'organizations', coalesce(organizations, ''), 'roles', coalesce(roles, ''));
    WHEN 'system' THEN
      ${scope('p_request_id', 'NULL', `(p_principal->>'organizationId')::uuid::text`)}
      RETURN jsonb_build_object('organizations', '', 'roles', '');
    WHEN 'apiKey' THEN
      -- Authenticated on every request: a revoked or expired key, or one of a deleted or
      -- suspended organization, finds nothing here (and the request is UNAUTHENTICATED).
      IF p_principal ? 'hash' THEN
        SELECT * INTO k FROM api_key_by_hash(decode(p_principal->>'hash', 'hex'));
      ELSE
        SELECT * INTO k FROM api_key_by_id((p_principal->>'id')::uuid);
      END IF;
      IF k.id IS NULL THEN
        RETURN jsonb_build_object('organizations', '', 'roles', '', 'apiKey', NULL);
      END IF;
      ${scope('p_request_id', 'NULL', 'k.organization_id::text')}
      RETURN jsonb_build_object('organizations', '', 'roles', '', 'apiKey',
        jsonb_build_object('id', k.id, 'organizationId', k.organization_id, 'name', k.name, 'scopes', to_jsonb(k.scopes)));
    ELSE
      RETURN jsonb_build_object('organizations', '', 'roles', '');
  END CASE;
END $$`;

export class SessionSettings1766200000000 implements MigrationInterface {
  name = 'SessionSettings1766200000000';

  async up(q: QueryRunner): Promise<void> {
    // CREATE OR REPLACE keeps the function's owner and privileges (not callable by PUBLIC).
    await q.query(OPEN_SESSION_SETTINGS);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(OPEN_SESSION.replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION'));
  }
}
