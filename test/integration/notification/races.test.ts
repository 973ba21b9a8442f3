import { ok, startTestApp, type TestApp, usesRealPostgres } from '../../helpers/app';
import { readAll, sideConnection, untilWaitingOnLocks } from '../../helpers/db';
import { concurrently, outcomes, PARALLEL, RACE_NOTE, ROUNDS } from '../../helpers/races';
import { INBOX, MARK_READ, publish, SET_PREFERENCE, team } from './notification-helpers';

/** What races must never produce: a failed change because a recipient left meanwhile, a row marked twice, two overrides. */

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

it(`publishing to everybody while a member is removed: every publish succeeds, the removed member keeps nothing ${RACE_NOTE}`, async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const t = await team(app, `race-${round}`);
    const removal = (async () => {
      await new Promise((r) => setTimeout(r, 5 * round));
      return app.gql(`mutation($org: ID!, $user: ID!) { removeMember(organizationId: $org, userId: $user) }`, { org: t.org.id, user: t.ids.member }, { as: t.owner });
    })();
    const published = await Promise.allSettled(Array.from({ length: PARALLEL }, (_, i) => publish(app, t.org.id, { type: 'race.check', title: `n${i}`, audience: 'ALL_MEMBERS' })));
    expect(published.filter((p) => p.status === 'rejected')).toEqual([]);
    for (const p of published) expect([3, 4]).toContain((p as PromiseFulfilledResult<number>).value);
    expect(outcomes([await removal])).toEqual({ ok: 1 });
    expect(await readAll(app, `SELECT 1 FROM notifications WHERE organization_id = $1 AND user_id = $2`, [t.org.id, t.ids.member])).toEqual([]);
    const [owner] = await readAll<{ n: number }>(app, `SELECT count(*)::int AS n FROM notifications WHERE organization_id = $1 AND user_id = $2`, [t.org.id, t.ids.owner]);
    expect(owner!.n).toBe(PARALLEL);
  }
});

it('a member removed (committed) while a publish waits on their membership row: routed again without them, the publish succeeds', async () => {
  const t = await team(app, 'race-fk');
  if (!usesRealPostgres()) {
    // The embedded database runs one transaction at a time: the removal simply comes first.
    ok(await app.gql(`mutation($org: ID!, $user: ID!) { removeMember(organizationId: $org, userId: $user) }`, { org: t.org.id, user: t.ids.member }, { as: t.owner }));
    expect(await publish(app, t.org.id, { type: 'race.fk', title: 'after', audience: 'ALL_MEMBERS' })).toBe(3);
    return;
  }
  const side = await sideConnection(app, 'remover');
  try {
    await side.query('BEGIN');
    await side.query(`DELETE FROM memberships WHERE organization_id = $1 AND user_id = $2`, [t.org.id, t.ids.member]);
    // The publish reads the member (the removal is not committed), then its inbox row's foreign key waits for the removal.
    const pending = publish(app, t.org.id, { type: 'race.fk', title: 'during', audience: 'ALL_MEMBERS' });
    await untilWaitingOnLocks(side, 1);
    await side.query('COMMIT');
    expect(await pending).toBe(3);
  } finally {
    await side.end();
  }
  expect((await readAll<{ user_id: string }>(app, `SELECT user_id FROM notifications WHERE organization_id = $1 AND type = 'race.fk'`, [t.org.id])).map((r) => r.user_id).sort()).toEqual(
    [t.ids.owner, t.ids.admin, t.ids.viewer].sort(),
  );
});

it(`marking everything read from many requests at once marks each notification exactly once ${RACE_NOTE}`, async () => {
  const t = await team(app, 'race-read');
  for (let i = 0; i < 30; i++) await publish(app, t.org.id, { type: 'race.read', title: `n${i}`, audience: 'USER', userId: t.ids.viewer });
  const results = await concurrently(PARALLEL, () => app.gql(MARK_READ, { ids: null }, { as: t.viewer }));
  expect(outcomes(results)).toEqual({ ok: PARALLEL });
  expect(results.reduce((sum, r) => sum + (r.data as { markNotificationsRead: number }).markNotificationsRead, 0)).toBe(30);
  expect(ok(await app.gql(INBOX, {}, { as: t.viewer })).me.unreadNotificationCount).toBe(0);
});

it(`concurrent first overrides of one type by one member leave one row and fail none ${RACE_NOTE}`, async () => {
  const t = await team(app, 'race-pref');
  const channels = ['IN_APP', 'EMAIL', 'BOTH', 'NONE'];
  const results = await concurrently(PARALLEL, (i) => app.gql(SET_PREFERENCE, { org: t.org.id, type: 'race.pref', channel: channels[i % 4] }, { as: t.member }));
  expect(outcomes(results)).toEqual({ ok: PARALLEL });
  const rows = await readAll<{ channel: string }>(app, `SELECT channel FROM notification_preferences WHERE organization_id = $1 AND user_id = $2`, [t.org.id, t.ids.member]);
  expect(rows).toHaveLength(1);
  // Serialised: exactly one change starts from "no override".
  const events = await readAll<{ changes: { oldValues: Record<string, unknown> } }>(app, `SELECT changes FROM audit_events WHERE organization_id = $1 AND action = 'notification.preference_changed'`, [t.org.id]);
  expect(events).toHaveLength(PARALLEL);
  expect(events.filter((e) => e.changes.oldValues.channel === null)).toHaveLength(1);
});
