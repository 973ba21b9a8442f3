import { TRANSFER_CONFIRMATION } from '../../../src/modules/membership/member.service';
import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll } from '../../helpers/db';
import { setPlanLimits, uniqueEmail } from '../../helpers/factories';
import { changeSecurity, delivered, INBOX, SET_DEFAULT, SET_PREFERENCE, SETTINGS, sorted, team, UPDATE_ORG } from './notification-helpers';

/**
 * Routing of the built-in types (SPEC §5): each reaches exactly its audience, on the channel of
 * each recipient (override → organization default → built-in default), and the organization's
 * notificationEmail receives the security and billing emails.
 */

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

const NONE = { inbox: [], email: [], digest: [] };

describe('built-in types reach exactly their recipients', () => {
  it('security.settings_changed: owners and admins on BOTH by default, plus the notificationEmail; members and viewers nothing; only when security changes', async () => {
    const t = await team(app, 'sec');
    ok(await app.gql(UPDATE_ORG, { id: t.org.id, input: { settings: { notificationEmail: 'alerts@example.com' }, description: 'x' } }, { as: t.owner }));
    expect(await delivered(app, t.org.id, 'security.settings_changed')).toEqual(NONE);
    await changeSecurity(app, t.org.id, t.owner, 60);
    expect(await delivered(app, t.org.id, 'security.settings_changed')).toEqual({ inbox: sorted(t.owner, t.admin), email: sorted(t.owner, t.admin, 'alerts@example.com'), digest: [] });
    // The same value again changes nothing: no notification.
    await changeSecurity(app, t.org.id, t.owner, 60);
    expect((await delivered(app, t.org.id, 'security.settings_changed')).inbox).toHaveLength(2);
    const [node] = ok(await app.gql(INBOX, { first: 5 }, { as: t.admin })).me.notifications.nodes;
    expect(node).toMatchObject({ organizationId: t.org.id, type: 'security.settings_changed', readAt: null, metadata: { changedFields: ['security.sessionTimeoutMinutes'] } });
    for (const as of [t.member, t.viewer]) expect(ok(await app.gql(INBOX, {}, { as })).me).toMatchObject({ unreadNotificationCount: 0, notifications: { totalCount: 0 } });
  });

  it('billing.status_changed: the owners only, BOTH, and the notificationEmail', async () => {
    const t = await team(app, 'billing');
    ok(await app.gql(UPDATE_ORG, { id: t.org.id, input: { settings: { notificationEmail: 'billing-alerts@example.com' } } }, { as: t.owner }));
    // TRIALING → ACTIVE by choosing a plan.
    ok(await app.gql(`mutation($org: ID!) { changePlan(organizationId: $org, plan: STARTER) { status } }`, { org: t.org.id }, { as: t.owner }));
    expect(await delivered(app, t.org.id, 'billing.status_changed')).toEqual({ inbox: [t.owner], email: sorted(t.owner, 'billing-alerts@example.com'), digest: [] });
    const [row] = await readAll<{ metadata: Record<string, unknown> }>(app, `SELECT metadata FROM notifications WHERE organization_id = $1 AND type = 'billing.status_changed'`, [t.org.id]);
    expect(row!.metadata).toMatchObject({ previousStatus: 'TRIALING', status: 'ACTIVE', plan: 'STARTER' });
  });

  it('quota.warning at 80 % and quota.blocked at 100 %: owners and admins, in-app (the default), once per crossing', async () => {
    const t = await team(app, 'quota');
    await setPlanLimits(app, 'PRO', { max_workspaces: 5 });
    try {
      const create = (name: string) => app.gql(`mutation($org: ID!, $name: String!) { createWorkspace(organizationId: $org, input: { name: $name }) { id } }`, { org: t.org.id, name }, { as: t.owner });
      for (const name of ['w2', 'w3']) ok(await create(name));
      expect(await delivered(app, t.org.id, 'quota.warning')).toEqual(NONE);
      ok(await create('w4')); // 4 of 5: 80 %
      expect(await delivered(app, t.org.id, 'quota.warning')).toEqual({ inbox: sorted(t.owner, t.admin), email: [], digest: [] });
      ok(await create('w5')); // 5 of 5: 100 %
      expect(await delivered(app, t.org.id, 'quota.blocked')).toEqual({ inbox: sorted(t.owner, t.admin), email: [], digest: [] });
      expect((await delivered(app, t.org.id, 'quota.warning')).inbox).toHaveLength(2);
      // Each event is recorded, routed, in notification_events.
      const events = await readAll<{ type: string; routed: boolean }>(app, `SELECT type, routed_at IS NOT NULL AS routed FROM notification_events WHERE organization_id = $1 ORDER BY created_at`, [t.org.id]);
      expect(events.filter((e) => e.type.startsWith('quota.'))).toEqual([{ type: 'quota.warning', routed: true }, { type: 'quota.blocked', routed: true }]);
    } finally {
      await setPlanLimits(app, 'PRO', { max_workspaces: 10 });
    }
  });

  it('ownership.transferred: the old and the new owner, in-app', async () => {
    const t = await team(app, 'transfer');
    ok(await app.gql(`mutation($org: ID!, $user: ID!, $c: String!) { transferOwnership(organizationId: $org, newOwnerId: $user, confirmation: $c) { id } }`, { org: t.org.id, user: t.ids.member, c: TRANSFER_CONFIRMATION }, { as: t.owner }));
    expect(await delivered(app, t.org.id, 'ownership.transferred')).toEqual({ inbox: sorted(t.owner, t.member), email: [], digest: [] });
  });

  it('member.invited: in-app to the invitee once they have an account (not yet a member); the email is the invitation email itself', async () => {
    const t = await team(app, 'invite');
    const known = uniqueEmail('known-invitee');
    ok(await app.gql(`{ me { user { id } } }`, {}, { as: known }));
    const unknown = uniqueEmail('unknown-invitee');
    const INVITE = `mutation($org: ID!, $email: String!) { inviteMember(organizationId: $org, input: { email: $email, roleKey: "viewer" }) { invitation { id } } }`;
    ok(await app.gql(INVITE, { org: t.org.id, email: known }, { as: t.owner }));
    ok(await app.gql(INVITE, { org: t.org.id, email: unknown }, { as: t.owner }));
    expect(await delivered(app, t.org.id, 'member.invited')).toEqual({ inbox: [known], email: [], digest: [] });
    expect((await delivered(app, t.org.id, 'invitation.created')).email).toEqual(sorted(known, unknown));
    const me = ok(await app.gql(INBOX, {}, { as: known })).me;
    expect(me.unreadNotificationCount).toBe(1);
    expect(me.notifications.nodes[0]).toMatchObject({ organizationId: t.org.id, type: 'member.invited', metadata: { roleKey: 'viewer' } });
    // Nobody of the organization sees the invitee's notification.
    for (const as of [t.owner, t.admin]) expect(ok(await app.gql(INBOX, {}, { as })).me.notifications.nodes.filter((n: { type: string }) => n.type === 'member.invited')).toEqual([]);
  });
});

describe('preferences: defaults → overrides → channel', () => {
  it('an organization default replaces the built-in one; an override beats it; NONE silences; null removes the override', async () => {
    const t = await team(app, 'prefs');
    const type = 'security.settings_changed';
    expect(ok(await app.gql(SET_DEFAULT, { org: t.org.id, type, channel: 'EMAIL' }, { as: t.owner })).setOrganizationNotificationDefault).toContainEqual({ type, channel: 'EMAIL' });
    await changeSecurity(app, t.org.id, t.owner, 61);
    expect(await delivered(app, t.org.id, type)).toEqual({ inbox: [], email: sorted(t.owner, t.admin), digest: [] });

    ok(await app.gql(SET_PREFERENCE, { org: t.org.id, type, channel: 'IN_APP' }, { as: t.admin }));
    ok(await app.gql(SET_PREFERENCE, { org: t.org.id, type, channel: 'NONE' }, { as: t.owner }));
    await changeSecurity(app, t.org.id, t.owner, 62);
    expect(await delivered(app, t.org.id, type)).toEqual({ inbox: [t.admin], email: sorted(t.owner, t.admin), digest: [] });

    const settings = async (as: string) => ok(await app.gql(SETTINGS, { org: t.org.id }, { as })).me.notificationSettings;
    expect((await settings(t.owner)).preferences).toContainEqual({ type, channel: 'NONE' });
    expect((await settings(t.admin)).preferences).toContainEqual({ type, channel: 'IN_APP' });
    // null removes the admin's override: the organization's default (EMAIL) applies again.
    expect(ok(await app.gql(SET_PREFERENCE, { org: t.org.id, type, channel: null }, { as: t.admin })).setNotificationPreference.preferences).toContainEqual({ type, channel: 'EMAIL' });
    await changeSecurity(app, t.org.id, t.owner, 63);
    expect(await delivered(app, t.org.id, type)).toEqual({ inbox: [t.admin], email: sorted(t.owner, t.admin, t.admin), digest: [] });
    const stored = await readAll(app, `SELECT user_id, type, channel FROM notification_preferences WHERE organization_id = $1 ORDER BY channel`, [t.org.id]);
    expect(stored).toEqual([{ user_id: t.ids.owner, type, channel: 'NONE' }]);
  });

  it('shows the effective settings: built-in defaults (security and billing BOTH, the others IN_APP), then organization defaults and own overrides; custom types too', async () => {
    const t = await team(app, 'effective');
    const initial = ok(await app.gql(SETTINGS, { org: t.org.id }, { as: t.member })).me.notificationSettings;
    expect(initial).toEqual({
      emailDigest: false,
      preferences: [
        { type: 'billing.status_changed', channel: 'BOTH' },
        { type: 'member.invited', channel: 'IN_APP' },
        { type: 'ownership.transferred', channel: 'IN_APP' },
        { type: 'quota.blocked', channel: 'IN_APP' },
        { type: 'quota.warning', channel: 'IN_APP' },
        { type: 'security.settings_changed', channel: 'BOTH' },
      ],
    });
    ok(await app.gql(SET_DEFAULT, { org: t.org.id, type: 'env.deployed', channel: 'NONE' }, { as: t.admin }));
    ok(await app.gql(SET_PREFERENCE, { org: t.org.id, type: 'task.failed', channel: 'EMAIL' }, { as: t.member }));
    const prefs = ok(await app.gql(SETTINGS, { org: t.org.id }, { as: t.member })).me.notificationSettings.preferences;
    expect(prefs).toContainEqual({ type: 'env.deployed', channel: 'NONE' });
    expect(prefs).toContainEqual({ type: 'task.failed', channel: 'EMAIL' });
    expect(prefs).toHaveLength(8);
    // Another member's settings are their own.
    expect(ok(await app.gql(SETTINGS, { org: t.org.id }, { as: t.viewer })).me.notificationSettings.preferences).not.toContainEqual({ type: 'task.failed', channel: 'EMAIL' });
    const defaults = ok(await app.gql(`query($id: ID!) { organization(id: $id) { notificationDefaults { type channel } } }`, { id: t.org.id }, { as: t.admin })).organization.notificationDefaults;
    expect(defaults).toHaveLength(7);
    expect(defaults).toContainEqual({ type: 'env.deployed', channel: 'NONE' });
  });

  it('refuses a malformed type (BAD_USER_INPUT, field type) and stores nothing; permissions: defaults need org.settings.update / org.settings.view; a non-member is NOT_FOUND', async () => {
    const t = await team(app, 'refusals');
    for (const type of ['Bad', 'x', 'a'.repeat(65), '1abc', 'with space']) {
      const byDefault = await app.gql(SET_DEFAULT, { org: t.org.id, type, channel: 'NONE' }, { as: t.owner });
      expect(codes(byDefault)).toEqual(['BAD_USER_INPUT']);
      expect(byDefault.errors![0]!.extensions!.field).toBe('type');
      expect(codes(await app.gql(SET_PREFERENCE, { org: t.org.id, type, channel: 'NONE' }, { as: t.member }))).toEqual(['BAD_USER_INPUT']);
    }
    expect(await readAll(app, `SELECT 1 FROM notification_defaults WHERE organization_id = $1 UNION ALL SELECT 1 FROM notification_preferences WHERE organization_id = $1`, [t.org.id])).toEqual([]);
    expect(await readAll(app, `SELECT action FROM audit_events WHERE organization_id = $1 AND action LIKE 'notification.%'`, [t.org.id])).toEqual([]);

    expect(codes(await app.gql(SET_DEFAULT, { org: t.org.id, type: 'quota.warning', channel: 'NONE' }, { as: t.member }))).toEqual(['FORBIDDEN']);
    const defaults = await app.gql(`query($id: ID!) { organization(id: $id) { id notificationDefaults { type } } }`, { id: t.org.id }, { as: t.member });
    expect(defaults.data!.organization).toEqual({ id: t.org.id, notificationDefaults: null });
    expect(codes(defaults)).toEqual(['FORBIDDEN']);
    // Any member sets their own channels (a viewer too), audited.
    ok(await app.gql(SET_PREFERENCE, { org: t.org.id, type: 'quota.warning', channel: 'NONE' }, { as: t.viewer }));
    expect(await readAll(app, `SELECT action, actor_email FROM audit_events WHERE organization_id = $1 AND action LIKE 'notification.%'`, [t.org.id])).toEqual([
      { action: 'notification.preference_changed', actor_email: t.viewer },
    ]);
    const outsider = uniqueEmail('outsider');
    expect(codes(await app.gql(SETTINGS, { org: t.org.id }, { as: outsider }))).toEqual(['NOT_FOUND']);
    expect(codes(await app.gql(SET_PREFERENCE, { org: t.org.id, type: 'quota.warning', channel: 'NONE' }, { as: outsider }))).toEqual(['NOT_FOUND']);
  });
});
