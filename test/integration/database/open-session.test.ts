import { randomBytes } from 'node:crypto';
import { OPEN_TRANSACTION } from '../../../src/database/migrations/1765500000000-api-keys';
import { OpenSession1766100000000 } from '../../../src/database/migrations/1766100000000-open-session';
import { startTestApp, type TestApp } from '../../helpers/app';
import { addMember, createOrganization, uniqueEmail } from '../../helpers/factories';
import { inRollback, readAll, withAllRows } from '../../helpers/db';
import { inOrganizationOrder, openSessionAs, userPrincipal as userPrincipalOf } from '../../helpers/session';

/**
 * The bootstrap's function (migration 1766100000000): `app_open_session` returns a user's
 * memberships as two lists in one order, and `app_open_transaction` — kept for the older
 * instances of a rolling deploy — still answers with `id:role` pairs.
 */
let app: TestApp;
let owner: string;
let member: string;
/** The member's roles, by organization: in no order that lists sorted by role, by insertion or by id would share. */
const memberRoles: Record<string, string> = {};

beforeAll(async () => {
  app = await startTestApp();
  owner = uniqueEmail('owner');
  member = uniqueEmail('member');
  const organizations: string[] = [];
  for (let i = 0; i < 3; i++) organizations.push((await createOrganization(app, owner)).id);
  // By organization id: viewer, member, admin (reverse alphabetical); inserted in yet another order.
  const byId = [...organizations].sort();
  const roles = ['viewer', 'member', 'admin'];
  for (const i of [1, 2, 0]) {
    await addMember(app, byId[i]!, member, roles[i]!);
    memberRoles[byId[i]!] = roles[i]!;
  }
  // The former function under another name: what older instances were answered before this migration.
  await withAllRows(app, (runner) => runner.query(OPEN_TRANSACTION.replace('FUNCTION app_open_transaction(', 'FUNCTION test_former_open(')));
});
afterAll(async () => {
  await app?.close();
});

/** Calls a bootstrap function in a transaction of its own (rolled back) as the service's login role does. */
const openAs = (fn: 'app_open_session' | 'app_open_transaction' | 'test_former_open', described: Record<string, unknown>) => openSessionAs(app, fn, described);
const userPrincipal = (email: string) => userPrincipalOf(app, email);
const open = async (fn: 'app_open_session' | 'app_open_transaction', email: string) => openAs(fn, await userPrincipal(email));

it("returns the memberships as two lists in one order, the first of them the transaction's scope", async () => {
  const { s, scope, role } = await open('app_open_session', member);
  const ids = String(s.organizations).split(',');
  const roles = String(s.roles).split(',');
  expect(ids).toHaveLength(3);
  expect(Object.fromEntries(ids.map((id, i) => [id, roles[i]]))).toEqual(memberRoles);
  expect(scope).toBe(s.organizations);
  expect(role).toBe('tenant_service_app');
});

it('answers older instances through app_open_transaction exactly as the former function did, for every kind of principal', async () => {
  const loner = uniqueEmail('loner');
  await app.gql(`{ me { user { id } } }`, {}, { as: loner });
  const [someOrganization] = Object.keys(memberRoles);
  const principals: Array<Record<string, unknown>> = [
    await userPrincipal(owner),
    await userPrincipal(member),
    await userPrincipal(loner),
    { kind: 'system', organizationId: someOrganization },
    { kind: 'apiKey', hash: randomBytes(32).toString('hex') },
    { kind: 'anonymous' },
  ];
  for (const described of principals) {
    const former = await openAs('test_former_open', described);
    const wrapped = await openAs('app_open_transaction', described);
    // In one order: since migration 1766500000000 the lists come in organization id order.
    expect({ kind: described.kind, ...inOrganizationOrder(wrapped) }).toEqual({ kind: described.kind, ...inOrganizationOrder(former) });
  }
  // And the member's pairs are the memberships themselves.
  const pairs = String((await open('app_open_transaction', member)).s.roles).split(',');
  expect(Object.fromEntries(pairs.map((pair) => pair.split(':')))).toEqual(memberRoles);
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
  await inRollback(app, async (runner) => {
    await new OpenSession1766100000000().down(runner);
    const [gone] = await runner.query(`SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'app_open_session'`);
    expect(gone.n).toBe(0);
    const [body] = await runner.query(`SELECT prosrc FROM pg_proc WHERE proname = 'app_open_transaction'`);
    expect(body.prosrc).toContain(`string_agg(m.organization_id::text || ':' || m.role_key, ',')`);
    await new OpenSession1766100000000().up(runner);
    const [back] = await runner.query(`SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'app_open_session'`);
    expect(back.n).toBe(1);
  });
});
