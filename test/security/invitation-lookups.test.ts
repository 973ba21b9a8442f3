import { randomUUID } from 'node:crypto';
import { systemPrincipal } from '../../src/auth/principal';
import { INVITATION_LOOKUP_ROLE } from '../../src/database/roles';
import { TenantTransaction } from '../../src/database/tenant-transaction';
import { invitationTokenHash } from '../../src/modules/invitation/invitation.token';
import { ok, startTestApp, type TestApp } from '../helpers/app';
import { readAll } from '../helpers/db';
import { createOrganization, type CreatedOrganization, uniqueEmail } from '../helpers/factories';

/**
 * The SECURITY DEFINER lookups of invitations (SPEC §3), proven against the database: owned by a
 * NOLOGIN role that may read only what a preview shows, pinned search_path, one hash at a time,
 * the pending list only for the transaction's own principal.
 */
let app: TestApp;
let orgA: CreatedOrganization;
let ownerA: string;
let token: string;
let invitee: string;

const asSystemOf = <T>(organizationId: string, fn: (tx: TenantTransaction) => Promise<T>): Promise<T> => {
  const tx = new TenantTransaction(app.db, systemPrincipal(organizationId, 'test'), randomUUID());
  return fn(tx).finally(() => tx.finish(false));
};

beforeAll(async () => {
  app = await startTestApp();
  ownerA = uniqueEmail('lookup-owner');
  orgA = await createOrganization(app, ownerA, { name: 'Lookup A' });
  invitee = uniqueEmail('lookup-invitee');
  const ticket = ok(
    await app.gql(`mutation($id: ID!, $email: String!) { inviteMember(organizationId: $id, input: { email: $email, roleKey: "viewer" }) { token } }`, { id: orgA.id, email: invitee }, { as: ownerA }),
  );
  token = ticket.inviteMember.token;
});
afterAll(async () => {
  await app?.close();
});

describe('invitation lookups before the tenant is known', () => {
  it('are pinned and owned by a role that may read only what a preview shows', async () => {
    const functions = await readAll(
      app,
      `SELECT p.proname AS name, pg_get_userbyid(p.proowner) AS owner, p.proconfig AS config, p.prosecdef AS definer,
              has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
       FROM pg_proc p WHERE p.proname IN ('invitation_by_token_hash', 'invitations_pending_for_me') ORDER BY p.proname`,
    );
    expect(functions).toEqual([
      { name: 'invitation_by_token_hash', owner: INVITATION_LOOKUP_ROLE, config: ['search_path=pg_catalog, pg_temp'], definer: true, public_execute: false },
      { name: 'invitations_pending_for_me', owner: INVITATION_LOOKUP_ROLE, config: ['search_path=pg_catalog, pg_temp'], definer: true, public_execute: false },
    ]);
    const [rights] = await readAll(
      app,
      `SELECT r.rolcanlogin AS login, r.rolsuper AS super, r.rolbypassrls AS bypass, has_schema_privilege($1, 'public', 'CREATE') AS create_in_schema,
              has_column_privilege($1, 'organizations', 'name', 'SELECT') AS org_name, has_column_privilege($1, 'organizations', 'slug', 'SELECT') AS org_slug,
              has_column_privilege($1, 'organizations', 'settings', 'SELECT') AS org_settings, has_column_privilege($1, 'users', 'subject', 'SELECT') AS user_subject,
              has_column_privilege($1, 'invitations', 'invited_by', 'SELECT') AS invited_by, has_table_privilege($1, 'invitations', 'UPDATE') AS update_invitations,
              has_table_privilege($1, 'memberships', 'SELECT') AS memberships, has_table_privilege($1, 'audit_events', 'SELECT') AS audit
       FROM pg_roles r WHERE r.rolname = $1`,
      [INVITATION_LOOKUP_ROLE],
    );
    expect(rights).toEqual({
      login: false,
      super: false,
      bypass: false,
      create_in_schema: false,
      org_name: true,
      org_slug: false,
      org_settings: false,
      user_subject: false,
      invited_by: false,
      update_invitations: false,
      memberships: false,
      audit: false,
    });
  });

  it('find one invitation by one exact hash, from a transaction scoped elsewhere, and nothing for anything else', async () => {
    const other = await createOrganization(app, uniqueEmail('lookup-other'));
    await asSystemOf(other.id, async (tx) => {
      // The table itself stays hidden from a transaction of another organization…
      expect(await tx.query(`SELECT id FROM invitations`)).toEqual([]);
      // …the function finds the one row the hash names, with the preview's columns only.
      const [row] = await tx.query(`SELECT * FROM invitation_by_token_hash(decode($1, 'hex'))`, [invitationTokenHash(token)]);
      expect(Object.keys(row!).sort()).toEqual(
        ['accepted_at', 'created_at', 'email', 'expires_at', 'id', 'organization_id', 'organization_name', 'role_description', 'role_id', 'role_is_system', 'role_key', 'role_name', 'role_permissions', 'status'].sort(),
      );
      expect(row).toMatchObject({ organization_id: orgA.id, organization_name: 'Lookup A', email: invitee, role_key: 'viewer', status: 'PENDING' });
      for (const hash of [invitationTokenHash(`${token}x`), '', '00', invitationTokenHash(token).slice(0, 62)]) {
        expect(await tx.query(`SELECT * FROM invitation_by_token_hash(decode($1, 'hex'))`, [hash])).toEqual([]);
      }
    });
  });

  it("list pending invitations only for the transaction's own principal (none for a job, none for someone else)", async () => {
    await asSystemOf(orgA.id, async (tx) => {
      expect(await tx.query(`SELECT * FROM invitations_pending_for_me()`)).toEqual([]);
    });
    const data = ok(await app.gql(`{ me { pendingInvitations { email organization { name } } } }`, {}, { as: invitee }));
    expect(data.me.pendingInvitations).toEqual([{ email: invitee, organization: { name: 'Lookup A' } }]);
    expect(ok(await app.gql(`{ me { pendingInvitations { id } } }`, {}, { as: ownerA })).me.pendingInvitations).toEqual([]);
  });

  it('leave the service role unable to delete invitations or rewrite the outbox', async () => {
    const [rights] = await readAll(
      app,
      `SELECT has_table_privilege('tenant_service_app', 'invitations', 'DELETE') AS delete_invitations,
              has_table_privilege('tenant_service_app', 'email_outbox', 'UPDATE') AS update_outbox,
              has_table_privilege('tenant_service_app', 'email_outbox', 'DELETE') AS delete_outbox`,
    );
    expect(rights).toEqual({ delete_invitations: false, update_outbox: false, delete_outbox: false });
  });
});
