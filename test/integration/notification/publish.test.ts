import { randomUUID } from 'node:crypto';
import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll } from '../../helpers/db';
import { addMember, createOrganization, uniqueEmail } from '../../helpers/factories';
import { delivered, publish, SET_DEFAULT, SET_PREFERENCE, sorted, team, type Team } from './notification-helpers';

/**
 * publishNotification (SPEC §5): for API keys with notifications.publish only — a user token is
 * FORBIDDEN (no role holds the permission). The publish service is tested here inside a unit of
 * work of its own: audiences resolved to the current members at publish time, the count of
 * recipients whose channel is not NONE, NOT_FOUND for a user who is not a member, the bounds.
 */

let app: TestApp;
let t: Team;
beforeAll(async () => {
  app = await startTestApp();
  t = await team(app, 'publish');
});
afterAll(async () => {
  await app?.close();
});

const PUBLISH = `mutation($org: ID!, $input: PublishNotificationInput!) { publishNotification(organizationId: $org, input: $input) }`;
const published = async (organizationId: string): Promise<number> =>
  (await readAll<{ n: number }>(app, `SELECT count(*)::int AS n FROM audit_events WHERE organization_id = $1 AND action = 'notification.published'`, [organizationId]))[0]!.n;
const rowsOf = async (organizationId: string) =>
  (await readAll<{ n: number }>(app, `SELECT ((SELECT count(*) FROM notifications WHERE organization_id = $1) + (SELECT count(*) FROM email_outbox WHERE organization_id = $1 AND type NOT LIKE 'invitation.%'))::int AS n`, [organizationId]))[0]!.n;

describe('publishNotification through the API', () => {
  it('is FORBIDDEN for every user token, whatever the role (a machine permission); NOT_FOUND outside; nothing written', async () => {
    const input = { type: 'env.deployed', title: 'Deployed', audience: 'ALL_MEMBERS' };
    for (const as of [t.owner, t.admin, t.member, t.viewer]) {
      const result = await app.gql(PUBLISH, { org: t.org.id, input }, { as });
      expect(codes(result)).toEqual(['FORBIDDEN']);
      expect(result.data).toBeNull();
    }
    expect(codes(await app.gql(PUBLISH, { org: t.org.id, input }, { as: uniqueEmail('outsider') }))).toEqual(['NOT_FOUND']);
    expect(codes(await app.gql(PUBLISH, { org: t.org.id, input }))).toEqual(['UNAUTHENTICATED']);
    expect(await rowsOf(t.org.id)).toBe(0);
  });
});

describe('the publish service', () => {
  it('routes to the audience resolved at publish time and returns the recipients whose channel is not NONE', async () => {
    const p = await team(app, 'audience');
    const type = 'deploy.finished';
    expect(await publish(app, p.org.id, { type, title: 'To owners and admins', audience: 'OWNERS_AND_ADMINS' })).toBe(2);
    expect(await delivered(app, p.org.id, type)).toEqual({ inbox: sorted(p.owner, p.admin), email: [], digest: [] });
    expect(await publish(app, p.org.id, { type, title: 'To everybody', audience: 'ALL_MEMBERS' })).toBe(4);
    expect(await publish(app, p.org.id, { type, title: 'To one', audience: 'USER', userId: p.ids.viewer })).toBe(1);
    expect((await delivered(app, p.org.id, type)).inbox).toEqual(sorted(p.owner, p.admin, p.owner, p.admin, p.member, p.viewer, p.viewer));

    // NONE silences (and is not counted); EMAIL and BOTH count once each.
    ok(await app.gql(SET_PREFERENCE, { org: p.org.id, type, channel: 'NONE' }, { as: p.member }));
    ok(await app.gql(SET_PREFERENCE, { org: p.org.id, type, channel: 'BOTH' }, { as: p.viewer }));
    ok(await app.gql(SET_DEFAULT, { org: p.org.id, type, channel: 'EMAIL' }, { as: p.owner }));
    expect(await publish(app, p.org.id, { type, title: 'Again', body: 'details', metadata: { build: 42 }, audience: 'ALL_MEMBERS' })).toBe(3);
    const emails = await readAll<{ recipient_email: string; payload: Record<string, unknown> }>(app, `SELECT recipient_email, payload FROM email_outbox WHERE organization_id = $1 AND type = $2`, [p.org.id, type]);
    expect(emails.map((e) => e.recipient_email).sort()).toEqual(sorted(p.owner, p.admin, p.viewer));
    expect(emails[0]!.payload).toEqual({ organizationId: p.org.id, type, title: 'Again', body: 'details', metadata: { build: 42 } });
    // A user the audience of ALL_MEMBERS did not hold is not a recipient: only current members are.
    const late = uniqueEmail('late');
    await addMember(app, p.org.id, late, 'viewer');
    expect(await publish(app, p.org.id, { type, title: 'With the newcomer', audience: 'ALL_MEMBERS' })).toBe(4);
    expect(await published(p.org.id)).toBe(5);
  });

  it('USER: a user who is not a current member of the organization (another organization’s, unknown, malformed) is NOT_FOUND; nothing written', async () => {
    const other = uniqueEmail('other-org-owner');
    await createOrganization(app, other);
    const otherId = ok(await app.gql(`{ me { user { id } } }`, {}, { as: other })).me.user.id;
    const before = await rowsOf(t.org.id);
    for (const userId of [otherId, randomUUID(), 'nope']) {
      await expect(publish(app, t.org.id, { type: 'x.y', title: 't', audience: 'USER', userId })).rejects.toMatchObject({ extensions: { code: 'NOT_FOUND' }, message: 'User not found' });
    }
    expect(await rowsOf(t.org.id)).toBe(before);
    expect(await published(t.org.id)).toBe(0);
  });

  it('refuses bad input (BAD_USER_INPUT naming the field): type (malformed or the service’s own), title ≤ 200, body ≤ 4 KiB, metadata ≤ 16 KiB, userId for USER; the bounds themselves pass', async () => {
    const base = { type: 'bounds.check', title: 'ok', audience: 'OWNERS_AND_ADMINS' };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ type: 'Bad Type' }, 'type'],
      // The service's own types: nobody may publish them in its name.
      [{ type: 'security.settings_changed' }, 'type'],
      [{ type: 'billing.status_changed' }, 'type'],
      [{ type: 'notification.digest' }, 'type'],
      [{ title: '' }, 'title'],
      [{ title: 'x'.repeat(201) }, 'title'],
      [{ body: 'x'.repeat(4097) }, 'body'],
      [{ body: 'é'.repeat(2049) }, 'body'],
      [{ metadata: { blob: 'x'.repeat(16 * 1024) } }, 'metadata'],
      [{ audience: 'USER' }, 'userId'],
    ];
    for (const [patch, field] of cases) {
      await expect(publish(app, t.org.id, { ...base, ...patch })).rejects.toMatchObject({ extensions: { code: 'BAD_USER_INPUT', field } });
    }
    expect(await rowsOf(t.org.id)).toBe(0);
    const metadata = { blob: 'x'.repeat(16 * 1024 - 11) };
    expect(Buffer.byteLength(JSON.stringify(metadata))).toBe(16 * 1024);
    expect(await publish(app, t.org.id, { ...base, title: 'x'.repeat(200), body: 'x'.repeat(4096), metadata })).toBe(2);
  });
});
