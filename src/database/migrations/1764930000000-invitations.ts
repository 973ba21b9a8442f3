import type { MigrationInterface, QueryRunner } from 'typeorm';
import { APP_ROLE, INVITATION_LOOKUP_ROLE } from '../roles';
import { ensureRole, giveFunctionTo } from './1764600000000-hardening';
import { ORG_SCOPE_INITPLAN, USER_INITPLAN } from './1764700000000-rls-initplan';

/** The tenant tables this migration adds (row-level security forced, like those of the foundation). */
export const INVITATION_TABLES = ['invitations', 'email_outbox'] as const;

const ts = 'timestamptz(3) NOT NULL DEFAULT now()';

/**
 * What the lookups return: exactly what `invitation(token)` may show, plus the ids to continue
 * with. An invitation of a deleted organization is not found.
 */
const PREVIEW_COLUMNS = `organization_id uuid, id uuid, organization_name text, email text, role_key text, role_id uuid, role_name text,
  role_description text, role_is_system boolean, role_permissions text[], status text, created_at timestamptz, expires_at timestamptz, accepted_at timestamptz`;
const PREVIEW_SELECT = `i.organization_id, i.id, o.name, i.email, i.role_key, r.id, r.name, r.description, r.is_system, r.permissions, i.status, i.created_at, i.expires_at, i.accepted_at
  FROM public.invitations i JOIN public.organizations o ON o.id = i.organization_id
  JOIN public.roles r ON r.organization_id = i.organization_id AND r.key = i.role_key
  WHERE o.status <> 'DELETED'`;

/**
 * Invitations (SPEC §5):
 * - `invitations`, a tenant table: the token is stored only as its SHA-256 (`token_hash`); at most
 *   one PENDING invitation per (organization, email), by a partial unique index.
 * - `email_outbox`, a tenant table a mailer reads (the notification feature will route to it
 *   later): one row per email to send, with a type and a JSON payload that never holds a token.
 * - Two SECURITY DEFINER lookups for the moment the tenant is not known yet, owned by a NOLOGIN
 *   role that may read only the columns a preview shows: one invitation by one token hash, and the
 *   PENDING unexpired invitations addressed to the current principal's own verified email.
 */
export class Invitations1764930000000 implements MigrationInterface {
  name = 'Invitations1764930000000';

  async up(q: QueryRunner): Promise<void> {
    await ensureRole(q, INVITATION_LOOKUP_ROLE);
    await q.query(`
      CREATE TABLE invitations (
        organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        email text NOT NULL CHECK (email = lower(email) AND char_length(email) BETWEEN 3 AND 254),
        role_key text NOT NULL,
        token_hash bytea NOT NULL CHECK (octet_length(token_hash) = 32),
        status text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'ACCEPTED', 'REVOKED', 'EXPIRED', 'DECLINED')),
        valid_days smallint NOT NULL CHECK (valid_days BETWEEN 1 AND 30),
        invited_by uuid REFERENCES users (id) ON DELETE SET NULL,
        created_at ${ts},
        updated_at ${ts},
        expires_at timestamptz(3) NOT NULL,
        accepted_at timestamptz(3),
        accepted_by uuid REFERENCES users (id) ON DELETE SET NULL,
        revoked_at timestamptz(3),
        declined_at timestamptz(3),
        PRIMARY KEY (organization_id, id),
        -- An invitation names a role of its own organization; deleting a custom role takes its
        -- invitations with it (the roles feature refuses to delete a role a PENDING one names).
        CONSTRAINT invitations_role_fkey FOREIGN KEY (organization_id, role_key) REFERENCES roles (organization_id, key) ON DELETE CASCADE
      )`);
    // At most one pending invitation per address and organization, whatever runs concurrently.
    await q.query(`CREATE UNIQUE INDEX invitations_one_pending ON invitations (organization_id, email) WHERE status = 'PENDING'`);
    await q.query(`CREATE UNIQUE INDEX invitations_token_hash_key ON invitations (organization_id, token_hash)`);
    // The lookups before the tenant is known: by token hash, and by the invitee's address.
    await q.query(`CREATE INDEX invitations_token_hash_idx ON invitations (token_hash)`);
    await q.query(`CREATE INDEX invitations_pending_email_idx ON invitations (email) WHERE status = 'PENDING'`);
    await q.query(`CREATE INDEX invitations_org_created_idx ON invitations (organization_id, created_at DESC, id DESC)`);

    await q.query(`
      CREATE TABLE email_outbox (
        organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        type text NOT NULL CHECK (type ~ '^[a-z][a-z0-9_.]{1,63}$'),
        recipient_email text NOT NULL,
        payload jsonb NOT NULL DEFAULT '{}',
        created_at ${ts},
        sent_at timestamptz(3),
        PRIMARY KEY (organization_id, id)
      )`);
    await q.query(`CREATE INDEX email_outbox_unsent_idx ON email_outbox (organization_id, created_at) WHERE sent_at IS NULL`);

    for (const table of INVITATION_TABLES) {
      await q.query(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`);
      await q.query(`
        CREATE POLICY tenant_isolation ON ${table}
          USING (organization_id = ANY (${ORG_SCOPE_INITPLAN})) WITH CHECK (organization_id = ANY (${ORG_SCOPE_INITPLAN}))`);
    }
    // Invitations are never deleted by the service (their history is the organization's); the
    // outbox is append-only for it (a mailer marks rows sent with rights of its own).
    await q.query(`GRANT SELECT, INSERT, UPDATE ON invitations TO ${APP_ROLE}`);
    await q.query(`GRANT SELECT, INSERT ON email_outbox TO ${APP_ROLE}`);

    // ------------------------------------------------------------------ lookups before the tenant is known
    // The lookup role reads only the columns of a preview, never token hashes of other rows than
    // the one asked for (the hash is the key of the lookup), nor anything else of an organization.
    await q.query(`GRANT SELECT (organization_id, id, email, role_key, token_hash, status, created_at, expires_at, accepted_at) ON invitations TO ${INVITATION_LOOKUP_ROLE}`);
    await q.query(`GRANT SELECT (id, name, status) ON organizations TO ${INVITATION_LOOKUP_ROLE}`);
    await q.query(`GRANT SELECT (organization_id, id, key, name, description, is_system, permissions) ON roles TO ${INVITATION_LOOKUP_ROLE}`);
    await q.query(`GRANT SELECT (id, email, email_verified) ON users TO ${INVITATION_LOOKUP_ROLE}`);
    await q.query(`CREATE POLICY invitation_lookup ON invitations FOR SELECT TO ${INVITATION_LOOKUP_ROLE} USING (true)`);
    await q.query(`CREATE POLICY invitation_lookup ON organizations FOR SELECT TO ${INVITATION_LOOKUP_ROLE} USING (true)`);
    await q.query(`CREATE POLICY invitation_lookup ON roles FOR SELECT TO ${INVITATION_LOOKUP_ROLE} USING (true)`);
    // Only the principal of the transaction itself.
    await q.query(`CREATE POLICY invitation_lookup ON users FOR SELECT TO ${INVITATION_LOOKUP_ROLE} USING (id = ${USER_INITPLAN})`);

    await q.query(`
      CREATE FUNCTION invitation_by_token_hash(p_hash bytea) RETURNS TABLE (${PREVIEW_COLUMNS})
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          SELECT ${PREVIEW_SELECT}
          AND octet_length(p_hash) = 32 AND i.token_hash = p_hash
        $$`);
    await giveFunctionTo(q, 'invitation_by_token_hash(bytea)', INVITATION_LOOKUP_ROLE);
    await q.query(`GRANT EXECUTE ON FUNCTION invitation_by_token_hash(bytea) TO ${APP_ROLE}`);

    // No argument: the address is the current principal's own, and only once it is verified.
    await q.query(`
      CREATE FUNCTION invitations_pending_for_me() RETURNS TABLE (${PREVIEW_COLUMNS})
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          SELECT ${PREVIEW_SELECT}
          AND i.status = 'PENDING' AND i.expires_at > now()
          -- One value computed once (the principal's own verified address), so the partial index applies.
          AND i.email = (SELECT lower(u.email) FROM public.users u WHERE u.id = ${USER_INITPLAN} AND u.email_verified)
          ORDER BY i.created_at DESC, i.id DESC
          LIMIT 100
        $$`);
    await giveFunctionTo(q, 'invitations_pending_for_me()', INVITATION_LOOKUP_ROLE);
    await q.query(`GRANT EXECUTE ON FUNCTION invitations_pending_for_me() TO ${APP_ROLE}`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS invitations_pending_for_me()`);
    await q.query(`DROP FUNCTION IF EXISTS invitation_by_token_hash(bytea)`);
    await q.query(`DROP POLICY IF EXISTS invitation_lookup ON users`);
    await q.query(`DROP POLICY IF EXISTS invitation_lookup ON roles`);
    await q.query(`DROP POLICY IF EXISTS invitation_lookup ON organizations`);
    await q.query(`REVOKE ALL ON users, organizations, roles FROM ${INVITATION_LOOKUP_ROLE}`);
    await q.query(`DROP TABLE IF EXISTS email_outbox`);
    await q.query(`DROP TABLE IF EXISTS invitations`);
  }
}
