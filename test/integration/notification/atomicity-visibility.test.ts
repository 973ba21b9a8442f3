import { APP_ROLE } from '../../../src/database/roles';
import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { inRollback, readAll, withAllRows } from '../../helpers/db';
import { setPlanLimits, uniqueEmail } from '../../helpers/factories';
import { asSystem, changeSecurity, delivered, INBOX, publish, team, type Team } from './notification-helpers';
import { NotificationEmitter, OWNERS_AND_ADMINS } from '../../../src/modules/notification/notification.emitter';

/**
 * Emitting happens in the transaction of the change (SPEC §5): a change that fails after it
 * emitted notifies nobody. Visibility is enforced by row-level security: a notification row is
 * readable only by its recipient, whatever SQL runs.
 */

let app: TestApp;
let t: Team;
beforeAll(async () => {
  app = await startTestApp();
  t = await team(app, 'atomic');
});
afterAll(async () => {
  await app?.close();
});

const everything = async (organizationId: string) =>
  (
    await readAll<{ n: number }>(
      app,
      `SELECT ((SELECT count(*) FROM notifications WHERE organization_id = $1) + (SELECT count(*) FROM email_outbox WHERE organization_id = $1 AND type NOT LIKE 'invitation.%')
        + (SELECT count(*) FROM notification_digest_items WHERE organization_id = $1) + (SELECT count(*) FROM notification_events WHERE organization_id = $1))::int AS n`,
      [organizationId],
    )
  )[0]!.n;

describe('a failed change notifies nobody', () => {
  it('createWorkspace that crossed 80 % and 100 % (quota.warning/blocked emitted) and then failed on its slug (CONFLICT): no inbox, outbox or event row', async () => {
    await setPlanLimits(app, 'PRO', { max_workspaces: 2 });
    try {
      const create = (slug: string) => app.gql(`mutation($org: ID!, $slug: String!) { createWorkspace(organizationId: $org, input: { name: "W", slug: $slug }) { id } }`, { org: t.org.id, slug }, { as: t.owner });
      const defaultSlug = (await readAll<{ slug: string }>(app, `SELECT slug FROM workspaces WHERE id = $1`, [t.org.defaultWorkspaceId]))[0]!.slug;
      expect(codes(await create(defaultSlug))).toEqual(['CONFLICT']);
      expect(await everything(t.org.id)).toBe(0);
      expect(await readAll(app, `SELECT 1 FROM audit_events WHERE organization_id = $1 AND action = 'quota.threshold_crossed'`, [t.org.id])).toEqual([]);
      // The same create with a free slug notifies owners and admins.
      ok(await create('free-slug'));
      expect((await delivered(app, t.org.id, 'quota.blocked')).inbox).toHaveLength(2);
    } finally {
      await setPlanLimits(app, 'PRO', { max_workspaces: 10 });
    }
  });

  it('updateOrganization whose COMMIT fails after security.settings_changed was emitted: nothing of it stored', async () => {
    const u = await team(app, 'commit-fails');
    ok(await app.gql(`mutation($id: ID!) { updateOrganization(id: $id, input: { settings: { notificationEmail: "ops@example.com" } }) { id } }`, { id: u.org.id }, { as: u.owner }));
    // A deferred check that fails at COMMIT, i.e. after the mutation's work (and its notifications) was done.
    await withAllRows(app, async (r) => {
      await r.query(`CREATE FUNCTION test_fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$`);
      await r.query(`CREATE CONSTRAINT TRIGGER test_fail_commit AFTER INSERT ON audit_events DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
                     WHEN (NEW.organization_id = '${u.org.id}' AND NEW.action = 'organization.updated') EXECUTE FUNCTION test_fail_commit()`);
    });
    try {
      const result = await app.gql(`mutation($id: ID!) { updateOrganization(id: $id, input: { security: { sessionTimeoutMinutes: 90 } }) { id } }`, { id: u.org.id }, { as: u.owner });
      expect(codes(result)).toEqual(['INTERNAL_SERVER_ERROR']);
    } finally {
      await withAllRows(app, async (r) => {
        await r.query(`DROP TRIGGER test_fail_commit ON audit_events`);
        await r.query(`DROP FUNCTION test_fail_commit()`);
      });
    }
    expect(await delivered(app, u.org.id, 'security.settings_changed')).toEqual({ inbox: [], email: [], digest: [] });
    const [row] = await readAll<{ minutes: unknown }>(app, `SELECT security->'sessionTimeoutMinutes' AS minutes FROM organizations WHERE id = $1`, [u.org.id]);
    expect(row!.minutes).toBe(480);
    await changeSecurity(app, u.org.id, u.owner, 90);
    expect((await delivered(app, u.org.id, 'security.settings_changed')).email).toEqual([u.admin, u.owner, 'ops@example.com'].sort());
  });

  it('a unit of work that emitted and then failed (rolled back) leaves nothing', async () => {
    const before = await everything(t.org.id);
    await expect(
      asSystem(app, t.org.id, async (ctx) => {
        await new NotificationEmitter(ctx).emit(t.org.id, { type: 'billing.status_changed', title: 'x' }, OWNERS_AND_ADMINS);
        throw new Error('later failure');
      }),
    ).rejects.toThrow('later failure');
    expect(await everything(t.org.id)).toBe(before);
  });
});

describe('visibility under row-level security', () => {
  it('the service role, scoped to the organization, reads and marks only the current user’s own notifications; a unit of work without a user reads the organization’s, marks none', async () => {
    await publish(app, t.org.id, { type: 'rls.check', title: 'for all', audience: 'ALL_MEMBERS' });
    const asUser = (userId: string | null, sql: string) =>
      inRollback(app, async (r) => {
        await r.query(`SELECT set_config('role', $1, true), set_config('app.user_id', $2, true), set_config('app.org_ids', $3, true)`, [APP_ROLE, userId ?? '', t.org.id]);
        return r.query(sql);
      });
    const seen = await asUser(t.ids.admin, `SELECT DISTINCT user_id FROM notifications`);
    expect(seen).toEqual([{ user_id: t.ids.admin }]);
    // A unit of work for no person (a job, e.g. the purge counting the organization's rows) reads them, never marks them.
    const all = await readAll<{ n: number }>(app, `SELECT count(*)::int AS n FROM notifications WHERE organization_id = $1`, [t.org.id]);
    expect(await asUser(null, `SELECT count(*)::int AS n FROM notifications`)).toEqual(all);
    expect((await asUser(null, `UPDATE notifications SET read_at = now() RETURNING id`))[1]).toBe(0);
    // TypeORM answers UPDATE … RETURNING with [rows, affected].
    const [updated, affected] = await asUser(t.ids.admin, `UPDATE notifications SET read_at = now() WHERE user_id <> '${t.ids.admin}' RETURNING id`);
    expect([updated, affected]).toEqual([[], 0]);
    // The inbox of another organization's owner holds none of these.
    expect(ok(await app.gql(INBOX, {}, { as: uniqueEmail('elsewhere') })).me.notifications.totalCount).toBe(0);
  });
});
