import type { QueryRunner } from 'typeorm';
import { APP_ROLE } from '../../src/database/roles';
import { TENANT_TABLES } from '../../src/database/migrations/1763900000000-foundation';
import { INVITATION_TABLES } from '../../src/database/migrations/1764930000000-invitations';
import { QUOTA_TABLES } from '../../src/database/migrations/1765000000000-quota-notifications';
import { SUBSCRIPTION_TABLES } from '../../src/database/migrations/1765100000000-subscriptions';
import { SECRET_TABLES } from '../../src/database/migrations/1765300000000-secrets';
import { API_KEY_TABLES } from '../../src/database/migrations/1765500000000-api-keys';
import { NOTIFICATION_TABLES } from '../../src/database/migrations/1765700000000-notifications';
import { ok, startTestApp, type TestApp } from '../helpers/app';
import { assertSeesEveryRow, inRollback, readAll, readAllOn } from '../helpers/db';
import { addMember, createOrganization, type CreatedOrganization, uniqueEmail } from '../helpers/factories';

/** Row-level security proven, not assumed (SPEC §3): the catalog, then the policies against deliberately unscoped SQL. */

let app: TestApp;
let orgA: CreatedOrganization;
let orgB: CreatedOrganization;
let userA: string;
/** The foundation's tenant tables and those later migrations added (a test below keeps this list complete). */
const TABLES = [...TENANT_TABLES, 'feature_flag_overrides', ...INVITATION_TABLES, ...QUOTA_TABLES, ...SUBSCRIPTION_TABLES, ...SECRET_TABLES, ...API_KEY_TABLES, ...NOTIFICATION_TABLES];
const UNSCOPED = ['workspaces', 'memberships', 'environments', 'audit_events', 'roles', 'organizations', 'subscriptions'] as const;

/** An environment written as the app role scoped to its organization, like any request would. */
async function insertEnvironment(organizationId: string, workspaceId: string, slug: string): Promise<void> {
  await app.db.withConnection(async (runner) => {
    await runner.startTransaction();
    await runner.query(`SELECT set_config('role', $1, true), set_config('app.org_ids', $2, true)`, [APP_ROLE, organizationId]);
    await runner.query(
      `INSERT INTO environments (organization_id, workspace_id, name, slug, tier, cpu, ram_mb, disk_gb) VALUES ($1, $2, $3, $3, 'DEV', 1, 512, 10)`,
      [organizationId, workspaceId, slug],
    );
    await runner.commitTransaction();
  });
}

const scopeTo = (runner: QueryRunner, userId: string, orgId: string) =>
  runner.query(`SELECT set_config('role', $1, true), set_config('app.user_id', $2, true), set_config('app.org_ids', $3, true)`, [APP_ROLE, userId, orgId]);

/** Rows per organization of A and B, read on a connection checked to see every row (superuser or BYPASSRLS). */
async function countsAsOwner(runner: QueryRunner, table: string): Promise<{ a: number; b: number }> {
  const column = table === 'organizations' ? 'id' : 'organization_id';
  const [row] = await readAllOn<{ a: number; b: number }>(
    runner,
    `SELECT count(*) FILTER (WHERE ${column} = $1)::int AS a, count(*) FILTER (WHERE ${column} = $2)::int AS b FROM ${table}`,
    [orgA.id, orgB.id],
  );
  return row!;
}

beforeAll(async () => {
  app = await startTestApp();
  const ownerA = uniqueEmail('rls-a');
  const ownerB = uniqueEmail('rls-b');
  orgA = await createOrganization(app, ownerA);
  orgB = await createOrganization(app, ownerB);
  userA = ok(await app.gql(`{ me { user { id } } }`, {}, { as: ownerA })).me.user.id;
  await addMember(app, orgA.id, uniqueEmail('rls-a-member'), 'member');
  await addMember(app, orgB.id, uniqueEmail('rls-b-member'), 'viewer');
  await insertEnvironment(orgA.id, orgA.defaultWorkspaceId, 'a-dev');
  await insertEnvironment(orgB.id, orgB.defaultWorkspaceId, 'b-dev');
  await insertEnvironment(orgB.id, orgB.defaultWorkspaceId, 'b-prod');
});
afterAll(async () => {
  await app?.close();
});

describe('catalog: RLS enabled, forced and checked on every tenant table', () => {
  it('lists every table holding organization_id among the tenant tables checked here', async () => {
    const rows: Array<{ relname: string }> = await app.db.withConnection((r) =>
      r.query(
        `SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
           AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped)
         ORDER BY 1`,
      ),
    );
    expect(rows.map((r) => r.relname)).toEqual([...TABLES].sort());
  });

  it('has relrowsecurity and relforcerowsecurity on every table of TENANT_TABLES', async () => {
    const rows: Array<{ relname: string; relrowsecurity: boolean; relforcerowsecurity: boolean }> = await app.db.withConnection((r) =>
      r.query(
        `SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
         WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname = ANY($1) ORDER BY relname`,
        [TABLES],
      ),
    );
    expect(rows).toEqual([...TABLES].sort().map((relname) => ({ relname, relrowsecurity: true, relforcerowsecurity: true })));
  });

  it('gives every tenant table at least one policy with a WITH CHECK on organization_id against app.org_ids', async () => {
    const rows: Array<{ tablename: string; checked: number }> = await app.db.withConnection((r) =>
      r.query(
        `SELECT t AS tablename, (SELECT count(*)::int FROM pg_policies p WHERE p.schemaname = 'public' AND p.tablename = t
                AND p.with_check IS NOT NULL AND p.with_check LIKE '%organization_id%app.org_ids%') AS checked
         FROM unnest($1::text[]) AS t ORDER BY t`,
        [TABLES],
      ),
    );
    expect(rows.filter((r) => r.checked < 1)).toEqual([]);
    expect(rows).toHaveLength(TABLES.length);
  });

  it('makes the app role neither superuser nor BYPASSRLS, and the owner of no table', async () => {
    const [role] = await app.db.withConnection((r) => r.query(`SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1`, [APP_ROLE]));
    expect(role).toEqual({ rolsuper: false, rolbypassrls: false });
    const owned = await app.db.withConnection((r) => r.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tableowner = $1`, [APP_ROLE]));
    expect(owned).toEqual([]);
  });
});

describe('catalog: the tenant key rule (Citus-ready)', () => {
  const attnames = `(SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(%KEYS%) WITH ORDINALITY k(attnum, ord)
                     JOIN pg_attribute a ON a.attrelid = %REL% AND a.attnum = k.attnum)`;
  const cols = (keys: string, rel: string) => attnames.replace('%KEYS%', keys).replace('%REL%', rel);

  it('has organization_id in the primary key and in every unique index of every tenant table', async () => {
    const rows: Array<{ table: string; index: string; primary: boolean; cols: string[] | null }> = await app.db.withConnection((r) =>
      r.query(
        `SELECT c.relname AS "table", i.indexrelid::regclass::text AS "index", i.indisprimary AS "primary", ${cols('i.indkey::int2[]', 'i.indrelid')} AS cols
         FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
         WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY($1) AND i.indisunique`,
        [TABLES],
      ),
    );
    expect(rows.filter((r) => r.primary).map((r) => r.table).sort()).toEqual([...TABLES].sort());
    expect(rows.filter((r) => !(r.cols ?? []).includes('organization_id'))).toEqual([]);
    // The check is not vacuous: the secondary unique keys are there too.
    expect(rows.map((r) => r.index)).toEqual(expect.arrayContaining(['roles_key_key', 'memberships_user_key', 'workspaces_slug_key', 'environments_slug_key']));
  });

  it('includes organization_id, column for column, in every foreign key between tenant tables', async () => {
    const rows: Array<{ from: string; to: string; name: string; cols: string[]; refcols: string[] }> = await app.db.withConnection((r) =>
      r.query(
        `SELECT src.relname AS "from", dst.relname AS "to", con.conname AS name,
                ${cols('con.conkey', 'con.conrelid')} AS cols, ${cols('con.confkey', 'con.confrelid')} AS refcols
         FROM pg_constraint con JOIN pg_class src ON src.oid = con.conrelid JOIN pg_class dst ON dst.oid = con.confrelid
         WHERE con.contype = 'f' AND src.relname = ANY($1) AND dst.relname = ANY($1)`,
        [TABLES],
      ),
    );
    const pairs = rows.map((r) => `${r.from}->${r.to}`);
    expect(pairs).toEqual(expect.arrayContaining(['memberships->roles', 'workspace_members->workspaces', 'workspace_members->memberships', 'environments->workspaces']));
    const broken = rows.filter((r) => {
      const at = r.cols.indexOf('organization_id');
      return at < 0 || r.refcols[at] !== 'organization_id';
    });
    expect(broken).toEqual([]);
  });

  it('leads every index of a tenant table with organization_id, except the lookups made before the organization is known', async () => {
    const rows: Array<{ index: string; lead: string | null }> = await app.db.withConnection((r) =>
      r.query(
        `SELECT i.indexrelid::regclass::text AS "index", a.attname::text AS lead
         FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
         LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY($1)`,
        [TABLES],
      ),
    );
    expect(rows.length).toBeGreaterThanOrEqual(TABLES.length + 5);
    // The exceptions are looked up before the organization is known: the principal's own
    // memberships by user (request bootstrap, own_memberships policy), an invitation by its token
    // hash and the viewer's pending invitations by address (the SECURITY DEFINER lookups), the
    // background jobs' due-work scans by due time, a federation reference to a subscription by
    // its id, a recipient's inbox across their organizations, and an API key by its hash or id
    // (the key lookups). None is unique.
    const byName = (a: { index: string }, b: { index: string }) => a.index.localeCompare(b.index);
    expect(rows.filter((r) => r.lead !== 'organization_id').sort(byName)).toEqual([
      // The API-key lookups (SECURITY DEFINER): a bearer key by its hash, an exchanged token's key by its id.
      { index: 'api_keys_id_idx', lead: 'id' },
      { index: 'api_keys_secret_hash_idx', lead: 'secret_hash' },
      { index: 'invitations_pending_email_idx', lead: 'email' },
      { index: 'invitations_pending_expiry_idx', lead: 'expires_at' },
      { index: 'invitations_token_hash_idx', lead: 'token_hash' },
      { index: 'memberships_user_idx', lead: 'user_id' },
      { index: 'notification_digest_items_due_idx', lead: 'day' },
      { index: 'notifications_recipient_idx', lead: 'user_id' },
      { index: 'subscriptions_archive_due_idx', lead: 'archive_at' },
      { index: 'subscriptions_id_idx', lead: 'id' },
      { index: 'subscriptions_period_due_idx', lead: 'current_period_end' },
      { index: 'subscriptions_trial_due_idx', lead: 'trial_ends_at' },
    ]);
  });
});

describe('policies against deliberately unscoped SQL', () => {
  it.each(UNSCOPED)('SELECT * FROM %s under org A scope returns exactly org A rows although org B has some', async (table) => {
    await inRollback(app, async (runner) => {
      const expected = await countsAsOwner(runner, table);
      expect(expected.a).toBeGreaterThan(0);
      expect(expected.b).toBeGreaterThan(0);
      await scopeTo(runner, userA, orgA.id);
      const rows: Array<Record<string, unknown>> = await runner.query(`SELECT * FROM ${table}`);
      const column = table === 'organizations' ? 'id' : 'organization_id';
      expect(rows.map((r) => r[column])).toEqual(Array.from({ length: expected.a }, () => orgA.id));
    });
  });

  it.each(UNSCOPED)('SELECT * FROM %s with no settings (only the role) returns zero rows', async (table) => {
    await inRollback(app, async (runner) => {
      await runner.query(`SELECT set_config('role', $1, true)`, [APP_ROLE]);
      expect(await runner.query(`SELECT * FROM ${table}`)).toEqual([]);
    });
  });

  it.each(UNSCOPED)('SELECT * FROM %s sees nothing after a scoped transaction ended on the same connection (empty setting)', async (table) => {
    await app.db.withConnection(async (runner) => {
      await runner.startTransaction();
      await scopeTo(runner, userA, orgA.id);
      expect((await runner.query(`SELECT * FROM ${table}`)).length).toBeGreaterThan(0);
      await runner.rollbackTransaction();
      await runner.startTransaction();
      await runner.query(`SELECT set_config('role', $1, true)`, [APP_ROLE]);
      const [settings] = await runner.query(`SELECT current_setting('app.org_ids', true) AS orgs, current_setting('app.user_id', true) AS u`);
      expect([settings.orgs ?? '', settings.u ?? '']).toEqual(['', '']);
      expect(await runner.query(`SELECT * FROM ${table}`)).toEqual([]);
      await runner.rollbackTransaction();
    });
  });

  it('refuses an INSERT into workspaces for org B under org A scope (WITH CHECK)', async () => {
    await inRollback(app, async (runner) => {
      await scopeTo(runner, userA, orgA.id);
      await expect(
        runner.query(`INSERT INTO workspaces (organization_id, name, slug) VALUES ($1, 'Planted', 'planted')`, [orgB.id]),
      ).rejects.toThrow(/new row violates row-level security policy/);
    });
    expect(await readAll(app, `SELECT count(*)::int AS n FROM workspaces WHERE slug = 'planted'`)).toEqual([{ n: 0 }]);
  });

  it('refuses to move an org A row into org B (UPDATE … SET organization_id, WITH CHECK)', async () => {
    await inRollback(app, async (runner) => {
      await scopeTo(runner, userA, orgA.id);
      await runner.query(`INSERT INTO workspaces (organization_id, name, slug) VALUES ($1, 'Mover', 'mover')`, [orgA.id]);
      await expect(
        runner.query(`UPDATE workspaces SET organization_id = $1 WHERE organization_id = $2 AND slug = 'mover'`, [orgB.id, orgA.id]),
      ).rejects.toThrow(/new row violates row-level security policy/);
    });
  });

  it('changes 0 rows when updating or deleting org B rows under org A scope', async () => {
    await inRollback(app, async (runner) => {
      await scopeTo(runner, userA, orgA.id);
      const [updated] = await runner.query(
        `WITH changed AS (UPDATE workspaces SET name = 'Hijacked' WHERE organization_id = $1 OR id = $2 RETURNING id)
         SELECT count(*)::int AS n FROM changed`,
        [orgB.id, orgB.defaultWorkspaceId],
      );
      expect(updated.n).toBe(0);
      const [deleted] = await runner.query(
        `WITH gone AS (DELETE FROM environments WHERE organization_id = $1 RETURNING id) SELECT count(*)::int AS n FROM gone`,
        [orgB.id],
      );
      expect(deleted.n).toBe(0);
      const [renamed] = await runner.query(
        `WITH changed AS (UPDATE organizations SET name = 'Hijacked' WHERE id = $1 RETURNING id) SELECT count(*)::int AS n FROM changed`,
        [orgB.id],
      );
      expect(renamed.n).toBe(0);
      // Back to the owner inside the same transaction: a write that had slipped through would show here.
      await runner.query(`RESET ROLE`);
      const [b] = await readAllOn(
        runner,
        `SELECT (SELECT name FROM workspaces WHERE organization_id = $1 AND id = $2) AS ws,
                (SELECT count(*)::int FROM environments WHERE organization_id = $1) AS envs,
                (SELECT name FROM organizations WHERE id = $1) AS org`,
        [orgB.id, orgB.defaultWorkspaceId],
      );
      expect(b.ws).toBe('Default');
      expect(b.envs).toBe(2);
      expect(b.org).not.toBe('Hijacked');
    });
  });
});

describe('readAll, the helper tests use to prove absence, refuses a role subject to row-level security', () => {
  it('reads through a role that sees every row: org B rows are counted although no app.org_ids is set', async () => {
    const [row] = await readAll(app, `SELECT count(*)::int AS n FROM workspaces WHERE organization_id = $1`, [orgB.id]);
    expect(row).toEqual({ n: 1 });
  });

  it(`throws instead of counting when the connection runs as ${APP_ROLE} (where the same count is a vacuous 0)`, async () => {
    await inRollback(app, async (runner) => {
      await runner.query(`SET LOCAL ROLE ${APP_ROLE}`);
      // Without the check, this is what a "nothing was written" assertion would read.
      expect(await runner.query(`SELECT count(*)::int AS n FROM workspaces WHERE organization_id = $1`, [orgB.id])).toEqual([{ n: 0 }]);
      await expect(readAllOn(runner, `SELECT count(*)::int AS n FROM workspaces WHERE organization_id = $1`, [orgB.id])).rejects.toThrow(
        `readAll: role '${APP_ROLE}' is subject to row-level security`,
      );
      await expect(assertSeesEveryRow(runner)).rejects.toThrow(/neither superuser nor BYPASSRLS/);
    });
  });
});
