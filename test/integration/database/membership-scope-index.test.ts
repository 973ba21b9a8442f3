import { APP_ROLE } from '../../../src/database/roles';
import { MembershipScopeIndex1766400000000 } from '../../../src/database/migrations/1766400000000-membership-scope-index';
import type { QueryRunner } from 'typeorm';
import { ok, startTestApp, type TestApp } from '../../helpers/app';
import { inRollback, readAll, withAllRows } from '../../helpers/db';
import { addMember, createOrganization, uniqueEmail } from '../../helpers/factories';

/**
 * The principal's memberships, which the opening of every transaction reads (app_open_session:
 * organization ids and role keys by user), come from `memberships_user_idx` alone (migration
 * 1766400000000): an index-only scan, no heap fetch per membership. The migration goes down and up.
 */
let app: TestApp;
let userId: string;
const email = uniqueEmail('scope-index');

/** The opening's read as app_open_session sends it (there with the user's id as a PL/pgSQL parameter, here as a literal: the same plan shape), planned as the service's role under the user's scope. */
const SCOPE_READ = `SELECT string_agg(m.organization_id::text, ','), string_agg(m.role_key, ',') FROM memberships m WHERE m.user_id = $1::uuid`;

const INDEX_DEF = `SELECT indexdef FROM pg_indexes WHERE tablename = 'memberships' AND indexname = 'memberships_user_idx'`;

beforeAll(async () => {
  app = await startTestApp();
  const owner = uniqueEmail('scope-index-owner');
  for (let i = 0; i < 3; i++) {
    const org = await createOrganization(app, owner);
    await addMember(app, org.id, email, i === 0 ? 'admin' : 'member');
  }
  [{ id: userId }] = await readAll<{ id: string }>(app, `SELECT id FROM users WHERE email = $1`, [email]);
  // The visibility map answers for every page (as autovacuum leaves a table that rarely changes).
  await withAllRows(app, (runner) => runner.query('VACUUM ANALYZE memberships'));
});
afterAll(async () => {
  await app?.close();
});

/**
 * The plan of the opening's read as the service's role under the user's scope, inside the
 * caller's transaction, with sequential and bitmap scans off (so that the index is used on a
 * test-sized table, with or without the heap).
 */
async function scopeReadPlan(runner: QueryRunner): Promise<string> {
  await runner.query(`SELECT set_config('role', $1, true), set_config('app.user_id', $2, true), set_config('app.org_ids', '', true)`, [APP_ROLE, userId]);
  await runner.query('SET LOCAL enable_seqscan = off');
  await runner.query('SET LOCAL enable_bitmapscan = off');
  const rows: Array<{ 'QUERY PLAN': string }> = await runner.query(`EXPLAIN ${SCOPE_READ.replace('$1', `'${userId}'`)}`);
  await runner.query('RESET ROLE');
  return rows.map((r) => r['QUERY PLAN']).join('\n');
}

it('holds each membership role key beside its user and organization', async () => {
  const [{ indexdef }] = await readAll<{ indexdef: string }>(app, INDEX_DEF);
  expect(indexdef).toMatch(/\(user_id, organization_id\) INCLUDE \(role_key\)$/);
});

it("answers the opening's read of the principal's memberships from the index alone", async () => {
  expect(await inRollback(app, scopeReadPlan)).toMatch(/Index Only Scan using memberships_user_idx on memberships/);
});

it('opens sessions with the same roles: the viewer sees their three organizations and their roles', async () => {
  const { me } = ok(await app.gql<{ me: { memberships: Array<{ role: { key: string } }> } }>(`{ me { memberships { role { key } } } }`, {}, { as: email }));
  const roles = me.memberships.map((m) => m.role.key).sort();
  expect(roles).toEqual(['admin', 'member', 'member']);
});

it('goes down (the index without the role key: the read goes to the table for each membership) and up again', async () => {
  await inRollback(app, async (runner) => {
    await new MembershipScopeIndex1766400000000().down(runner);
    const [{ indexdef: down }] = await runner.query(INDEX_DEF);
    expect(down).toMatch(/\(user_id, organization_id\)$/);
    const without = await scopeReadPlan(runner);
    expect(without).toMatch(/Index Scan using memberships_user_idx on memberships/);
    expect(without).not.toMatch(/Index Only Scan/);
    await new MembershipScopeIndex1766400000000().up(runner);
    const [{ indexdef: up }] = await runner.query(INDEX_DEF);
    expect(up).toMatch(/\(user_id, organization_id\) INCLUDE \(role_key\)$/);
    expect(await scopeReadPlan(runner)).toMatch(/Index Only Scan using memberships_user_idx on memberships/);
  });
});
