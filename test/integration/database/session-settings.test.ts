import { randomBytes } from 'node:crypto';
import { OPEN_SESSION } from '../../../src/database/migrations/1766100000000-open-session';
import { SessionSettings1766200000000 } from '../../../src/database/migrations/1766200000000-session-settings';
import { startTestApp, type TestApp } from '../../helpers/app';
import { addMember, createOrganization, uniqueEmail } from '../../helpers/factories';
import { inRollback, readAll, withAllRows } from '../../helpers/db';
import { inOrganizationOrder, openSessionAs, userPrincipal as userPrincipalOf } from '../../helpers/session';
import { createKey } from '../api-key/api-key-helpers';

/**
 * The bootstrap's function after migration 1766200000000: `app_open_session` sets the role and the
 * settings with set_config itself instead of calling app_set_scope — and answers, switches and
 * scopes exactly as the function of migration 1766100000000 did, for every kind of principal.
 */
let app: TestApp;
let owner: string;
let member: string;
let organizations: string[] = [];
let keyId = '';

beforeAll(async () => {
  app = await startTestApp();
  owner = uniqueEmail('owner');
  member = uniqueEmail('member');
  organizations = [];
  for (let i = 0; i < 3; i++) organizations.push((await createOrganization(app, owner)).id);
  await addMember(app, organizations[0]!, member, 'viewer');
  await addMember(app, organizations[2]!, member, 'admin');
  keyId = (await createKey(app, organizations[1]!, ['org.view'], { as: owner })).id;
  // The former function under another name: what every request was opened with before this migration.
  await withAllRows(app, (runner) => runner.query(OPEN_SESSION.replace('FUNCTION app_open_session(', 'FUNCTION test_former_session(')));
});
afterAll(async () => {
  await app?.close();
});

/** Calls a bootstrap function in a transaction of its own (rolled back), as the service's login role does. */
const openAs = (fn: 'app_open_session' | 'test_former_session', described: Record<string, unknown>) => openSessionAs(app, fn, described, 'req-1');
const userPrincipal = (email: string) => userPrincipalOf(app, email);

it('opens every kind of principal exactly as the former function did: the answer, the role and every setting', async () => {
  const loner = uniqueEmail('loner');
  await app.gql(`{ me { user { id } } }`, {}, { as: loner });
  const principals: Array<Record<string, unknown>> = [
    await userPrincipal(owner),
    await userPrincipal(member),
    await userPrincipal(loner),
    { kind: 'system', organizationId: organizations[1] },
    { kind: 'apiKey', id: keyId },
    { kind: 'apiKey', hash: randomBytes(32).toString('hex') },
    { kind: 'anonymous' },
  ];
  for (const described of principals) {
    const former = await openAs('test_former_session', described);
    const now = await openAs('app_open_session', described);
    // In one order: since migration 1766500000000 the lists come in organization id order.
    expect({ kind: described.kind, ...inOrganizationOrder(now) }).toEqual({ kind: described.kind, ...inOrganizationOrder(former) });
  }
  // Not vacuous: the member's scope is its two organizations, the key's its own, and the role switched.
  const opened = await openAs('app_open_session', await userPrincipal(member));
  expect(opened.scope.split(',').sort()).toEqual([organizations[0], organizations[2]].sort());
  expect(opened.role).toBe('tenant_service_app');
  expect(opened.request_id).toBe('req-1');
  const byKey = await openAs('app_open_session', { kind: 'apiKey', id: keyId });
  expect({ scope: byKey.scope, key: (byKey.s.apiKey as { id: string } | null)?.id }).toEqual({ scope: organizations[1], key: keyId });
});

it('provisions a user it has never seen, as the former function did', async () => {
  const newcomer = uniqueEmail('newcomer');
  const described = { kind: 'user', subject: `dev|${newcomer}`, email: newcomer, emailVerified: true, name: 'New', picture: null };
  const opened = await openAs('app_open_session', described);
  expect((opened.s.user as { email: string; created: boolean }).email).toBe(newcomer);
  expect((opened.s.user as { created: boolean }).created).toBe(true);
  expect({ scope: opened.scope, role: opened.role }).toEqual({ scope: '', role: 'tenant_service_app' });
  // Rolled back with its transaction.
  expect(await readAll(app, `SELECT 1 FROM users WHERE email = $1`, [newcomer])).toEqual([]);
});

it('no longer calls app_set_scope, is still not callable by PUBLIC nor by the service role, and goes down and up again', async () => {
  const body = async () => (await readAll<{ prosrc: string }>(app, `SELECT prosrc FROM pg_proc WHERE proname = 'app_open_session'`))[0]!.prosrc;
  expect(await body()).not.toContain('app_set_scope');
  expect(await body()).toContain(`set_config('app.org_ids', coalesce(organizations, ''), true)`);
  const [rights] = await readAll(
    app,
    `SELECT has_function_privilege('public', p.oid, 'EXECUTE') AS public, has_function_privilege('tenant_service_app', p.oid, 'EXECUTE') AS app
     FROM pg_proc p WHERE p.proname = 'app_open_session'`,
  );
  expect(rights).toEqual({ public: false, app: false });
  await inRollback(app, async (runner) => {
    await new SessionSettings1766200000000().down(runner);
    const [down] = await runner.query(`SELECT prosrc FROM pg_proc WHERE proname = 'app_open_session'`);
    expect(down.prosrc).toContain('PERFORM app_set_scope(p_request_id, u.id::text, organizations)');
    await new SessionSettings1766200000000().up(runner);
    const [up] = await runner.query(`SELECT prosrc FROM pg_proc WHERE proname = 'app_open_session'`);
    expect(up.prosrc).not.toContain('app_set_scope');
  });
});
