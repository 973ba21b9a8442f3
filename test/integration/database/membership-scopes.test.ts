import type { Client } from 'pg';
import { APP_ROLE, SCOPE_KEEPER_ROLE } from '../../../src/database/roles';
import { MembershipScopes1766500000000 } from '../../../src/database/migrations/1766500000000-membership-scopes';
import { codes, ok, startTestApp, usesRealPostgres, type TestApp } from '../../helpers/app';
import { inRollback, readAll, readAllOn, sideConnection, untilWaitingOnLocks, withAllRows } from '../../helpers/db';
import { addMember, createOrganization, uniqueEmail, type CreatedOrganization } from '../../helpers/factories';

/**
 * `membership_scopes` (migration 1766500000000): each user's organizations and role keys, which
 * the opening of every request reads, kept by triggers in the transaction of every change of a
 * membership. What a user notices is that a membership added, changed or removed counts on the
 * very next request; what must never happen is a row that disagrees with the memberships — after
 * any write, any rollback, and any two transactions racing on one user.
 */
let app: TestApp;
const owner = uniqueEmail('scopes-owner');
let orgs: CreatedOrganization[];

/** Users whose kept row differs from their memberships (as sorted `organization:role` pairs), or who have a row and no membership. */
const DRIFT = `
  WITH truth AS (
    SELECT user_id, array_agg(organization_id::text || ':' || role_key ORDER BY organization_id::text || ':' || role_key COLLATE "C") AS pairs
    FROM memberships GROUP BY user_id),
  kept AS (
    SELECT user_id, (SELECT array_agg(o || ':' || r ORDER BY o || ':' || r COLLATE "C")
                     FROM unnest(string_to_array(organizations, ','), string_to_array(roles, ',')) AS x(o, r)) AS pairs
    FROM membership_scopes)
  SELECT coalesce(t.user_id, k.user_id) AS user_id, t.pairs AS truth, k.pairs AS kept
  FROM truth t FULL JOIN kept k USING (user_id) WHERE t.pairs IS DISTINCT FROM k.pairs`;

const drift = () => readAll(app, DRIFT);
const userIdOf = async (email: string): Promise<string> => (await readAll<{ id: string }>(app, `SELECT id FROM users WHERE email = $1`, [email]))[0]!.id;
const keptOf = async (userId: string) => readAll<{ organizations: string; roles: string }>(app, `SELECT organizations, roles FROM membership_scopes WHERE user_id = $1`, [userId]);
const pairsOf = async (userId: string): Promise<string[]> => {
  const [row] = await keptOf(userId);
  if (!row) return [];
  const roles = row.roles.split(',');
  return row.organizations.split(',').map((o, i) => `${o}:${roles[i]}`).sort();
};

beforeAll(async () => {
  app = await startTestApp();
  orgs = [];
  for (let i = 0; i < 4; i++) orgs.push(await createOrganization(app, owner));
});
afterAll(async () => {
  await app?.close();
});

it('holds, for every user, exactly their memberships', async () => {
  expect(await drift()).toEqual([]);
  const ownerId = await userIdOf(owner);
  expect(await pairsOf(ownerId)).toEqual(orgs.map((o) => `${o.id}:owner`).sort());
});

describe('a change of membership counts on the next request', () => {
  const email = uniqueEmail('scopes-member');
  let userId: string;
  const viewerRole = (org: string) => app.gql<{ organization: { viewerRole: { key: string } | null } | null }>(`query($id: ID!) { organization(id: $id) { viewerRole { key } } }`, { id: org }, { as: email });

  it('added: the organization is theirs, with its role', async () => {
    userId = await addMember(app, orgs[0]!.id, email, 'member');
    expect(await pairsOf(userId)).toEqual([`${orgs[0]!.id}:member`]);
    expect(ok(await viewerRole(orgs[0]!.id)).organization?.viewerRole?.key).toBe('member');
    expect(codes(await viewerRole(orgs[1]!.id))).toEqual(['NOT_FOUND']);
  });

  it('role changed: the new role', async () => {
    ok(await app.gql(`mutation($o: ID!, $u: ID!) { updateMemberRole(organizationId: $o, userId: $u, roleKey: "admin") { role { key } } }`, { o: orgs[0]!.id, u: userId }, { as: owner }));
    expect(await pairsOf(userId)).toEqual([`${orgs[0]!.id}:admin`]);
    expect(ok(await viewerRole(orgs[0]!.id)).organization?.viewerRole?.key).toBe('admin');
  });

  it('removed: refused at once, and no row is left', async () => {
    ok(await app.gql(`mutation($o: ID!, $u: ID!) { removeMember(organizationId: $o, userId: $u) }`, { o: orgs[0]!.id, u: userId }, { as: owner }));
    expect(codes(await viewerRole(orgs[0]!.id))).toEqual(['NOT_FOUND']);
    expect(await keptOf(userId)).toEqual([]);
    expect(await drift()).toEqual([]);
  });

  it('ownership transferred: both users change role in one transaction', async () => {
    await addMember(app, orgs[1]!.id, email, 'admin');
    ok(
      await app.gql(
        `mutation($o: ID!, $u: ID!, $c: String!) { transferOwnership(organizationId: $o, newOwnerId: $u, confirmation: $c) { id } }`,
        { o: orgs[1]!.id, u: userId, c: "transfer ownership" },
        { as: owner },
      ),
    );
    expect(await pairsOf(userId)).toEqual([`${orgs[1]!.id}:owner`]);
    expect((await pairsOf(await userIdOf(owner))).filter((p) => p.startsWith(orgs[1]!.id))).toEqual([`${orgs[1]!.id}:admin`]);
    expect(await drift()).toEqual([]);
  });
});

describe('writes that do not reach COMMIT change nothing', () => {
  it('a rolled-back transaction', async () => {
    const email = uniqueEmail('scopes-rolled-back');
    const userId = await addMember(app, orgs[2]!.id, email, 'member');
    const before = await pairsOf(userId);
    expect(before).toEqual([`${orgs[2]!.id}:member`]);
    await inRollback(app, async (runner) => {
      await runner.query(`INSERT INTO memberships (organization_id, user_id, role_key) VALUES ($1, $2, 'viewer')`, [orgs[3]!.id, userId]);
      await runner.query(`DELETE FROM memberships WHERE organization_id = $1 AND user_id = $2`, [orgs[2]!.id, userId]);
    });
    expect(await pairsOf(userId)).toEqual(before);
    expect(await drift()).toEqual([]);
  });

  it('savepoints inside a committed transaction: what was rolled back does not count, what was released does', async () => {
    const [kept, dropped, updated] = [uniqueEmail('scopes-released'), uniqueEmail('scopes-dropped'), uniqueEmail('scopes-updated')];
    const [keptId, droppedId, updatedId] = [await addMember(app, orgs[2]!.id, kept, 'member'), await addMember(app, orgs[2]!.id, dropped, 'member'), await addMember(app, orgs[2]!.id, updated, 'member')];
    await withAllRows(app, async (runner) => {
      await runner.startTransaction();
      await runner.query(`SAVEPOINT released`);
      await runner.query(`INSERT INTO memberships (organization_id, user_id, role_key) VALUES ($1, $2, 'viewer')`, [orgs[3]!.id, keptId]);
      await runner.query(`RELEASE SAVEPOINT released`);
      await runner.query(`SAVEPOINT dropped`);
      await runner.query(`INSERT INTO memberships (organization_id, user_id, role_key) VALUES ($1, $2, 'viewer')`, [orgs[3]!.id, droppedId]);
      await runner.query(`ROLLBACK TO SAVEPOINT dropped`);
      await runner.query(`UPDATE memberships SET role_key = 'admin' WHERE organization_id = $1 AND user_id = $2`, [orgs[2]!.id, updatedId]);
      await runner.commitTransaction();
    });
    expect(await pairsOf(keptId)).toEqual([`${orgs[2]!.id}:member`, `${orgs[3]!.id}:viewer`].sort());
    expect(await pairsOf(droppedId)).toEqual([`${orgs[2]!.id}:member`]);
    expect(await pairsOf(updatedId)).toEqual([`${orgs[2]!.id}:admin`]);
    expect(await drift()).toEqual([]);
  });

  it('SET CONSTRAINTS ALL IMMEDIATE: each statement settles its users at its end, exact all the same', async () => {
    const email = uniqueEmail('scopes-immediate');
    const userId = await addMember(app, orgs[2]!.id, email, 'member');
    await withAllRows(app, async (runner) => {
      await runner.startTransaction();
      await runner.query(`SET CONSTRAINTS ALL IMMEDIATE`);
      await runner.query(`INSERT INTO memberships (organization_id, user_id, role_key) VALUES ($1, $2, 'viewer')`, [orgs[3]!.id, userId]);
      await runner.query(`DELETE FROM memberships WHERE organization_id = $1 AND user_id = $2`, [orgs[2]!.id, userId]);
      await runner.commitTransaction();
    });
    expect(await pairsOf(userId)).toEqual([`${orgs[3]!.id}:viewer`]);
    expect(await drift()).toEqual([]);
  });
});

it('follows an organization deleted with all its memberships in one statement, and a user deleted', async () => {
  const doomed = await createOrganization(app, owner);
  const emails = [uniqueEmail('scopes-doomed-a'), uniqueEmail('scopes-doomed-b')];
  const ids: string[] = [];
  for (const email of emails) ids.push(await addMember(app, doomed.id, email, 'member'));
  await addMember(app, orgs[3]!.id, emails[0]!, 'viewer');
  // A membership the first one invited: its invited_by is set to NULL when they are deleted.
  const invitee = await addMember(app, orgs[3]!.id, uniqueEmail('scopes-invitee'), 'member', { invitedBy: ids[0] });
  await withAllRows(app, (runner) => runner.query(`DELETE FROM organizations WHERE id = $1`, [doomed.id]));
  expect(await pairsOf(ids[0]!)).toEqual([`${orgs[3]!.id}:viewer`]);
  expect(await keptOf(ids[1]!)).toEqual([]);
  await withAllRows(app, (runner) => runner.query(`DELETE FROM users WHERE id = $1`, [ids[0]]));
  expect(await keptOf(ids[0]!)).toEqual([]);
  expect(await readAll(app, `SELECT invited_by FROM memberships WHERE user_id = $1`, [invitee])).toEqual([{ invited_by: null }]);
  expect(await pairsOf(invitee)).toEqual([`${orgs[3]!.id}:member`]);
  expect(await drift()).toEqual([]);
});

it('is emptied with the memberships by TRUNCATE', async () => {
  await inRollback(app, async (runner) => {
    await runner.query(`TRUNCATE memberships CASCADE`);
    expect(await readAllOn(runner, `SELECT count(*)::int AS n FROM membership_scopes`)).toEqual([{ n: 0 }]);
  });
  expect(await drift()).toEqual([]);
});

describe('rights', () => {
  it("lets the service's role read only its principal's own row, and write none", async () => {
    const ownerId = await userIdOf(owner);
    await inRollback(app, async (runner) => {
      await runner.query(`SELECT set_config('role', $1, true), set_config('app.user_id', $2, true), set_config('app.org_ids', '', true)`, [APP_ROLE, ownerId]);
      expect((await runner.query(`SELECT user_id FROM membership_scopes`)).map((r: { user_id: string }) => r.user_id)).toEqual([ownerId]);
      await runner.query('SAVEPOINT w');
      await expect(runner.query(`UPDATE membership_scopes SET organizations = '' WHERE user_id = $1`, [ownerId])).rejects.toThrow(/permission denied/);
      await runner.query('ROLLBACK TO SAVEPOINT w');
      await expect(runner.query(`INSERT INTO membership_scopes VALUES (gen_random_uuid(), '', '')`)).rejects.toThrow(/permission denied/);
    });
  });

  it("leaves the marks out of the service's reach: it can neither read nor clear them, and its writes are settled all the same", async () => {
    const email = uniqueEmail('scopes-marks');
    const userId = await addMember(app, orgs[2]!.id, email, 'member');
    const ownerId = await userIdOf(owner);
    await withAllRows(app, async (runner) => {
      await runner.startTransaction();
      await runner.query(`SELECT set_config('role', $1, true), set_config('app.user_id', $2, true), set_config('app.org_ids', $3, true)`, [APP_ROLE, ownerId, orgs[2]!.id]);
      await runner.query(`DELETE FROM memberships WHERE organization_id = $1 AND user_id = $2`, [orgs[2]!.id, userId]);
      await runner.query('SAVEPOINT w');
      await expect(runner.query(`DELETE FROM membership_scopes_due`)).rejects.toThrow(/permission denied/);
      await runner.query('ROLLBACK TO SAVEPOINT w');
      await expect(runner.query(`SELECT * FROM membership_scopes_due`)).rejects.toThrow(/permission denied/);
      await runner.query('ROLLBACK TO SAVEPOINT w');
      await runner.query(`RESET ALL`);
      await runner.commitTransaction();
    });
    expect(await keptOf(userId)).toEqual([]);
    expect(await readAll(app, `SELECT count(*)::int AS n FROM membership_scopes_due`)).toEqual([{ n: 0 }]);
  });

  it('sees nothing without a user', async () => {
    await inRollback(app, async (runner) => {
      await runner.query(`SELECT set_config('role', $1, true), set_config('app.user_id', '', true)`, [APP_ROLE]);
      expect(await runner.query(`SELECT * FROM membership_scopes`)).toEqual([]);
    });
  });

  it('keeps it by SECURITY DEFINER functions of the keeper role, pinned, not callable by PUBLIC', async () => {
    const functions = await readAll(
      app,
      `SELECT p.proname AS name, pg_get_userbyid(p.proowner) AS owner, p.proconfig AS config, p.prosecdef AS definer, has_function_privilege('public', p.oid, 'EXECUTE') AS public
       FROM pg_proc p WHERE p.proname IN ('app_membership_scopes_due', 'app_membership_scopes_settle', 'app_membership_scopes_truncated') ORDER BY p.proname`,
    );
    const expected = { owner: SCOPE_KEEPER_ROLE, config: ['search_path=pg_catalog, pg_temp'], definer: true, public: false };
    expect(functions).toEqual([
      { name: 'app_membership_scopes_due', ...expected },
      { name: 'app_membership_scopes_settle', ...expected },
      { name: 'app_membership_scopes_truncated', ...expected },
    ]);
  });
});

it('goes down (the opening reads the memberships again) and up (every row rebuilt)', async () => {
  const definition = `SELECT pg_get_functiondef('app_open_session'::regproc) AS def`;
  await inRollback(app, async (runner) => {
    await new MembershipScopes1766500000000().down(runner);
    const [{ def: down }] = await runner.query(definition);
    expect(down).toContain('FROM memberships m WHERE m.user_id = u.id');
    expect(await runner.query(`SELECT to_regclass('membership_scopes') AS t`)).toEqual([{ t: null }]);
    await new MembershipScopes1766500000000().up(runner);
    const [{ def: up }] = await runner.query(definition);
    expect(up).toContain('FROM membership_scopes s WHERE s.user_id = u.id');
    expect(up).not.toContain('FROM memberships m');
    expect(await runner.query(DRIFT)).toEqual([]);
    expect((await runner.query(`SELECT count(*)::int AS n FROM membership_scopes`))[0].n).toBeGreaterThan(0);
  });
});

/** Two transactions of the test's own, on connections outside the service's pool (PostgreSQL only). */
const onPostgres = usesRealPostgres() ? describe : describe.skip;
onPostgres('two transactions racing', () => {
  let a: Client;
  let b: Client;
  let holder: Client;
  beforeAll(async () => {
    [a, b, holder] = await Promise.all([sideConnection(app, 'scopes-a'), sideConnection(app, 'scopes-b'), sideConnection(app, 'scopes-holder')]);
  });
  afterAll(async () => {
    await Promise.all([a, b, holder].map((c) => c?.end()));
  });

  it('settling the same user at the same moment: the second counts the first (no change lost)', async () => {
    const email = uniqueEmail('scopes-race');
    const userId = await addMember(app, orgs[0]!.id, email, 'member');
    await a.query('BEGIN');
    await b.query('BEGIN');
    await a.query(`INSERT INTO memberships (organization_id, user_id, role_key) VALUES ($1, $2, 'viewer')`, [orgs[1]!.id, userId]);
    await b.query(`INSERT INTO memberships (organization_id, user_id, role_key) VALUES ($1, $2, 'viewer')`, [orgs[2]!.id, userId]);
    // Both COMMITs reach their settling while a third transaction holds the user's row: each has
    // read nothing yet of the other; the one let through second must read after the first committed.
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM membership_scopes WHERE user_id = $1 FOR UPDATE`, [userId]);
    const commits = Promise.all([a.query('COMMIT'), b.query('COMMIT')]);
    await untilWaitingOnLocks(holder, 2, ['scopes-a', 'scopes-b']);
    await holder.query('ROLLBACK');
    await commits;
    expect(await pairsOf(userId)).toEqual([`${orgs[0]!.id}:member`, `${orgs[1]!.id}:viewer`, `${orgs[2]!.id}:viewer`].sort());
    const { organizations } = ok(await app.gql<{ organizations: { nodes: Array<{ id: string }> } }>(`{ organizations(first: 10) { nodes { id } } }`, {}, { as: email }));
    expect(organizations.nodes.map((o) => o.id).sort()).toEqual([orgs[0]!.id, orgs[1]!.id, orgs[2]!.id].sort());
  });

  it('two transactions that touched two users in opposite orders both commit (no deadlock)', async () => {
    const [x, y] = [uniqueEmail('scopes-x'), uniqueEmail('scopes-y')];
    const ids = [await addMember(app, orgs[0]!.id, x, 'member'), await addMember(app, orgs[0]!.id, y, 'member')];
    for (const email of [x, y]) await addMember(app, orgs[1]!.id, email, 'member');
    const [lo, hi] = [...ids].sort();
    const role = (client: Client, org: string, user: string, key: string) =>
      client.query(`UPDATE memberships SET role_key = $3 WHERE organization_id = $1 AND user_id = $2`, [org, user, key]);
    // a touches lo first, b touches hi first. Rows locked in the order they were touched would
    // deadlock below: a holds lo and waits for hi while b holds hi and waits for lo.
    await a.query('BEGIN');
    await b.query('BEGIN');
    await role(a, orgs[0]!.id, lo!, 'admin');
    await role(b, orgs[1]!.id, hi!, 'admin');
    await role(a, orgs[0]!.id, hi!, 'viewer');
    await role(b, orgs[1]!.id, lo!, 'viewer');
    // Both COMMITs wait at lo's row, held by a third transaction; released, they settle in turn.
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM membership_scopes WHERE user_id = $1 FOR UPDATE`, [lo]);
    const commitA = a.query('COMMIT');
    await untilWaitingOnLocks(holder, 1, ['scopes-a']);
    const commitB = b.query('COMMIT');
    await untilWaitingOnLocks(holder, 2, ['scopes-a', 'scopes-b']);
    await holder.query('ROLLBACK');
    await Promise.all([commitA, commitB]);
    expect(await pairsOf(lo!)).toEqual([`${orgs[0]!.id}:admin`, `${orgs[1]!.id}:viewer`].sort());
    expect(await pairsOf(hi!)).toEqual([`${orgs[0]!.id}:viewer`, `${orgs[1]!.id}:admin`].sort());
    expect(await drift()).toEqual([]);
  });
});
