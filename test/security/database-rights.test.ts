import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { systemPrincipal } from '../../src/auth/principal';
import { RequestContext } from '../../src/context';
import { PROVISIONER_ROLE, SLUG_LOOKUP_ROLE } from '../../src/database/roles';
import { TenantTransaction } from '../../src/database/tenant-transaction';
import { ok, startTestApp, type TestApp } from '../helpers/app';
import { readAll } from '../helpers/db';
import { addMember, createOrganization, type CreatedOrganization, uniqueEmail } from '../helpers/factories';

/**
 * What the service's database role may do, proven against the database itself: the users table,
 * the system roles, the cross-tenant lookup functions, and units of work without a request.
 */

let app: TestApp;
let orgA: CreatedOrganization;
let orgB: CreatedOrganization;
let ownerA: string;
let memberA: string;
let ownerB: string;

/** Runs fn in a unit of work of the service itself inside one organization, always rolled back. */
const asSystemOf = <T>(organizationId: string, fn: (tx: TenantTransaction) => Promise<T>): Promise<T> => {
  const tx = new TenantTransaction(app.db, systemPrincipal(organizationId, 'test'), randomUUID());
  return fn(tx).finally(() => tx.finish(false));
};

const pgCode = async (work: Promise<unknown>): Promise<string | undefined> => {
  try {
    await work;
    return undefined;
  } catch (error) {
    const e = error as { driverError?: { code?: string }; code?: string };
    return e.driverError?.code ?? e.code;
  }
};

beforeAll(async () => {
  app = await startTestApp();
  const a = uniqueEmail('rights-a');
  const b = uniqueEmail('rights-b');
  orgA = await createOrganization(app, a);
  orgB = await createOrganization(app, b);
  ownerA = ok(await app.gql(`{ me { user { id } } }`, {}, { as: a })).me.user.id;
  ownerB = ok(await app.gql(`{ me { user { id } } }`, {}, { as: b })).me.user.id;
  memberA = await addMember(app, orgA.id, uniqueEmail('rights-a-member'), 'member');
  await ok(await app.gql(`{ me { user { id } } }`, {}, { as: uniqueEmail('rights-loner') }));
});
afterAll(async () => {
  await app?.close();
});

describe('users under row-level security', () => {
  it('shows a principal itself and the people it shares an organization with, nobody else', async () => {
    const rows = await asSystemOf(orgA.id, (tx) => tx.query<{ id: string }>(`SELECT id FROM users ORDER BY id`));
    expect(rows.map((r) => r.id).sort()).toEqual([ownerA, memberA].sort());
    const [{ total }] = (await readAll<{ total: number }>(app, `SELECT count(*)::int AS total FROM users`)) as [{ total: number }];
    expect(total).toBeGreaterThanOrEqual(4);
  });

  it('lets the service role neither insert nor update users (subject above all): provisioning has its own function', async () => {
    expect(await pgCode(asSystemOf(orgA.id, (tx) => tx.query(`UPDATE users SET subject = 'stolen' WHERE id = $1`, [memberA])))).toBe('42501');
    expect(await pgCode(asSystemOf(orgA.id, (tx) => tx.query(`UPDATE users SET email = 'x@example.com' WHERE id = $1`, [memberA])))).toBe('42501');
    expect(await pgCode(asSystemOf(orgA.id, (tx) => tx.query(`INSERT INTO users (subject, email) VALUES ('forged', 'f@example.com')`)))).toBe('42501');
    const [row] = await readAll<{ subject: string }>(app, `SELECT subject FROM users WHERE id = $1`, [memberA]);
    expect(row!.subject).toMatch(/^dev\|/);
  });
});

describe('system roles', () => {
  it('cannot be updated or deleted through the service role, while custom roles can', async () => {
    await asSystemOf(orgA.id, async (tx) => {
      expect(await tx.query(`UPDATE roles SET permissions = '{org.delete}', key = 'root' WHERE organization_id = $1 AND is_system RETURNING key`, [orgA.id])).toEqual([]);
      expect(await tx.query(`UPDATE roles SET is_system = false WHERE organization_id = $1 AND key = 'owner' RETURNING key`, [orgA.id])).toEqual([]);
      expect(await tx.query(`DELETE FROM roles WHERE organization_id = $1 AND key = 'viewer' RETURNING key`, [orgA.id])).toEqual([]);
      await tx.query(`INSERT INTO roles (organization_id, key, name) VALUES ($1, 'auditor', 'Auditor')`, [orgA.id]);
      expect(await tx.query(`UPDATE roles SET name = 'Auditors' WHERE organization_id = $1 AND key = 'auditor' RETURNING name`, [orgA.id])).toEqual([{ name: 'Auditors' }]);
    });
    const roles = await readAll<{ key: string }>(app, `SELECT key FROM roles WHERE organization_id = $1 AND is_system ORDER BY key`, [orgA.id]);
    expect(roles.map((r) => r.key)).toEqual(['admin', 'member', 'owner', 'viewer']);
  });

  it('cannot be renamed under their memberships: the role-key foreign key no longer cascades', async () => {
    const code = await pgCode(
      asSystemOf(orgA.id, async (tx) => {
        await tx.query(`INSERT INTO roles (organization_id, key, name) VALUES ($1, 'lead', 'Lead')`, [orgA.id]);
        await tx.query(`UPDATE memberships SET role_key = 'lead' WHERE organization_id = $1 AND user_id = $2`, [orgA.id, memberA]);
        await tx.query(`UPDATE roles SET key = 'boss' WHERE organization_id = $1 AND key = 'lead'`, [orgA.id]);
      }),
    );
    expect(code).toBe('23503');
    const [{ n }] = (await readAll<{ n: number }>(app, `SELECT count(*)::int AS n FROM memberships WHERE organization_id = $1 AND role_key = 'owner'`, [orgA.id])) as [{ n: number }];
    expect(n).toBe(1);
  });
});

describe('cross-tenant lookups', () => {
  it('answers the slug lookup only about the candidates asked, with no pattern matching', async () => {
    await asSystemOf(orgA.id, async (tx) => {
      const taken = (candidates: string[]) => tx.query<{ s: string }>(`SELECT organization_slugs_taken($1::text[]) AS s`, [candidates]).then((r) => r.map((x) => x.s).sort());
      expect(await taken([orgB.slug, `${orgB.slug}-nope`])).toEqual([orgB.slug]);
      expect(await taken(['%', '_%', `${orgB.slug.slice(0, 3)}%`])).toEqual([]);
      expect(await taken(Array.from({ length: 101 }, (_, i) => (i === 0 ? orgB.slug : `x-${i}`)))).toEqual([]);
    });
  });

  it('keeps the security-definer functions pinned and owned by roles that hold only what they need', async () => {
    const functions = await readAll<{ name: string; owner: string; config: string[] | null; definer: boolean }>(
      app,
      `SELECT p.proname AS name, pg_get_userbyid(p.proowner) AS owner, p.proconfig AS config, p.prosecdef AS definer
       FROM pg_proc p WHERE p.proname IN ('organization_slugs_taken', 'app_provision_user', 'organization_slugs_like') ORDER BY p.proname`,
    );
    expect(functions).toEqual([
      { name: 'app_provision_user', owner: PROVISIONER_ROLE, config: ['search_path=pg_catalog, pg_temp'], definer: true },
      { name: 'organization_slugs_taken', owner: SLUG_LOOKUP_ROLE, config: ['search_path=pg_catalog, pg_temp'], definer: true },
    ]);
    const [rights] = await readAll<Record<string, boolean>>(
      app,
      `SELECT r.rolcanlogin AS login, r.rolsuper AS super, r.rolbypassrls AS bypass,
              has_column_privilege($1, 'organizations', 'slug', 'SELECT') AS slug, has_column_privilege($1, 'organizations', 'name', 'SELECT') AS name,
              has_table_privilege($1, 'users', 'SELECT') AS users, has_schema_privilege($1, 'public', 'CREATE') AS create_in_schema
       FROM pg_roles r WHERE r.rolname = $1`,
      [SLUG_LOOKUP_ROLE],
    );
    expect(rights).toEqual({ login: false, super: false, bypass: false, slug: true, name: false, users: false, create_in_schema: false });
    const [provisioner] = await readAll<Record<string, boolean>>(
      app,
      `SELECT has_column_privilege($1, 'users', 'subject', 'UPDATE') AS subject, has_table_privilege($1, 'memberships', 'SELECT') AS memberships,
              has_table_privilege($1, 'organizations', 'SELECT') AS organizations`,
      [PROVISIONER_ROLE],
    );
    expect(provisioner).toEqual({ subject: false, memberships: false, organizations: false });
  });
});

describe('a unit of work without a request (a job)', () => {
  it('runs in one organization with a system actor, through the same transaction class and audit writer', async () => {
    const services = { config: app.config, db: app.db, envelope: app.envelope, logger: pino({ level: 'silent' }) };
    const ctx = RequestContext.forSystem(services, orgA.id, 'test-job');
    const seen = await ctx.mutate(async () => {
      const workspaces = await ctx.tx.query<{ organization_id: string }>(`SELECT organization_id FROM workspaces`);
      await ctx.audit.record({ organizationId: orgA.id, action: 'organization.updated', resourceType: 'organization', resourceId: orgA.id });
      return workspaces;
    });
    // Writing into another organization is refused by the policies.
    expect(await pgCode(ctx.mutate(() => ctx.audit.record({ organizationId: orgB.id, action: 'organization.updated', resourceType: 'organization' })))).toBe('42501');
    await ctx.tx.finish();
    expect(new Set(seen.map((w) => w.organization_id))).toEqual(new Set([orgA.id]));
    const events = await readAll<{ organization_id: string; actor_type: string; actor_id: string | null; actor_name: string | null; request_id: string }>(
      app,
      `SELECT organization_id, actor_type, actor_id, actor_name, request_id FROM audit_events WHERE request_id LIKE 'test-job:%'`,
    );
    expect(events).toEqual([{ organization_id: orgA.id, actor_type: 'SYSTEM', actor_id: null, actor_name: 'test-job', request_id: ctx.requestId }]);
    expect(ownerB).toBeDefined();
  });
});
