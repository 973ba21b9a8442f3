import { OpenSession1766100000000 } from '../../../src/database/migrations/1766100000000-open-session';
import { startTestApp, type TestApp } from '../../helpers/app';
import { addMember, createOrganization, uniqueEmail } from '../../helpers/factories';
import { readAll, withAllRows } from '../../helpers/db';

/**
 * The bootstrap's function (migration 1766100000000): `app_open_session` returns a user's
 * memberships as two lists in one order, and `app_open_transaction` — kept for the older
 * instances of a rolling deploy — still answers with `id:role` pairs.
 */
let app: TestApp;
let owner: string;
let member: string;
const organizations: string[] = [];

beforeAll(async () => {
  app = await startTestApp();
  owner = uniqueEmail('owner');
  member = uniqueEmail('member');
  for (let i = 0; i < 3; i++) organizations.push((await createOrganization(app, owner)).id);
  await addMember(app, organizations[0]!, member, 'admin');
  await addMember(app, organizations[2]!, member, 'viewer');
});
afterAll(async () => {
  await app?.close();
});

const principal = (email: string) => JSON.stringify({ kind: 'user', subject: `dev|${email}`, email, emailVerified: true, name: null, picture: null });
const subjectOf = async (email: string) => (await readAll<{ subject: string }>(app, `SELECT subject FROM users WHERE email = $1`, [email]))[0]!.subject;

/** Calls a bootstrap function in a transaction of its own (rolled back) as the service's login role does. */
async function open(fn: 'app_open_session' | 'app_open_transaction', email: string) {
  const described = JSON.parse(principal(email)) as Record<string, unknown>;
  described.subject = await subjectOf(email);
  return withAllRows(app, async (runner) => {
    await runner.query('BEGIN');
    try {
      const [row] = await runner.query(`SELECT ${fn}($1, $2::jsonb) AS s, current_setting('app.org_ids') AS scope, current_user AS role`, ['test', JSON.stringify(described)]);
      return row as { s: Record<string, unknown>; scope: string; role: string };
    } finally {
      await runner.query('ROLLBACK');
    }
  });
}

it("returns the memberships as two lists in one order, the first of them the transaction's scope", async () => {
  const { s, scope, role } = await open('app_open_session', member);
  const ids = String(s.organizations).split(',');
  const roles = String(s.roles).split(',');
  expect(ids).toHaveLength(2);
  const pairs = Object.fromEntries(ids.map((id, i) => [id, roles[i]]));
  expect(pairs).toEqual({ [organizations[0]!]: 'admin', [organizations[2]!]: 'viewer' });
  expect(scope).toBe(s.organizations);
  expect(role).toBe('tenant_service_app');
});

it('answers older instances through app_open_transaction with the same memberships as id:role pairs', async () => {
  for (const email of [owner, member]) {
    const fresh = await open('app_open_session', email);
    const old = await open('app_open_transaction', email);
    const ids = String(fresh.s.organizations).split(',');
    const roles = String(fresh.s.roles).split(',');
    expect(old.s.roles).toBe(ids.map((id, i) => `${id}:${roles[i]}`).join(','));
    expect(old.s).not.toHaveProperty('organizations');
    expect(old.s.user).toEqual(fresh.s.user);
    expect(old.scope).toBe(fresh.scope);
  }
});

it('gives a user without memberships empty lists and an empty scope', async () => {
  const loner = uniqueEmail('loner');
  await app.gql(`{ me { user { id } } }`, {}, { as: loner });
  const { s, scope } = await open('app_open_session', loner);
  expect({ organizations: s.organizations, roles: s.roles, scope }).toEqual({ organizations: '', roles: '', scope: '' });
  expect((await open('app_open_transaction', loner)).s.roles).toBe('');
});

it('is not callable by PUBLIC nor by the service role, like app_open_transaction', async () => {
  const rows = await readAll(
    app,
    `SELECT p.proname AS name, has_function_privilege('public', p.oid, 'EXECUTE') AS public, has_function_privilege('tenant_service_app', p.oid, 'EXECUTE') AS app
     FROM pg_proc p WHERE p.proname IN ('app_open_session', 'app_open_transaction') ORDER BY p.proname`,
  );
  expect(rows).toEqual([
    { name: 'app_open_session', public: false, app: false },
    { name: 'app_open_transaction', public: false, app: false },
  ]);
});

it('goes down to the former function and up again', async () => {
  await withAllRows(app, async (runner) => {
    await runner.query('BEGIN');
    try {
      await new OpenSession1766100000000().down(runner);
      const [gone] = await runner.query(`SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'app_open_session'`);
      expect(gone.n).toBe(0);
      const [body] = await runner.query(`SELECT prosrc FROM pg_proc WHERE proname = 'app_open_transaction'`);
      expect(body.prosrc).toContain(`string_agg(m.organization_id::text || ':' || m.role_key, ',')`);
      await new OpenSession1766100000000().up(runner);
      const [back] = await runner.query(`SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'app_open_session'`);
      expect(back.n).toBe(1);
    } finally {
      await runner.query('ROLLBACK');
    }
  });
});
