import { randomUUID } from 'node:crypto';
import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll } from '../../helpers/db';
import { addMember, createOrganization, uniqueEmail } from '../../helpers/factories';
import { INBOX, MARK_READ, publish, SET_PREFERENCE, team, type Team } from './notification-helpers';

/**
 * The in-app inbox (SPEC §5): `me.notifications` (newest first, keyset pagination, unreadOnly),
 * `me.unreadNotificationCount`, `markNotificationsRead`; a notification is visible only to its
 * recipient and disappears with the recipient's membership.
 */

let app: TestApp;
let t: Team;
let otherOrg: { id: string };
let otherOwner: string;
beforeAll(async () => {
  app = await startTestApp();
  t = await team(app, 'inbox');
  otherOwner = uniqueEmail('inbox-other-owner');
  otherOrg = await createOrganization(app, otherOwner);
  await addMember(app, otherOrg.id, t.member, 'member');
  // 25 for the member in the team's organization, 3 in the other one; 2 for everybody in the team.
  for (let i = 0; i < 25; i++) await publish(app, t.org.id, { type: 'task.done', title: `Task ${i}`, audience: 'USER', userId: t.ids.member });
  for (let i = 0; i < 3; i++) await publish(app, otherOrg.id, { type: 'env.deployed', title: `Deploy ${i}`, audience: 'USER', userId: t.ids.member });
  for (let i = 0; i < 2; i++) await publish(app, t.org.id, { type: 'maintenance.planned', title: `Window ${i}`, audience: 'ALL_MEMBERS' });
});
afterAll(async () => {
  await app?.close();
});

type Node = { id: string; organizationId: string; type: string; title: string; createdAt: string; readAt: string | null };
const inbox = async (as: string, variables: Record<string, unknown> = {}) => ok(await app.gql(INBOX, variables, { as })).me;

async function allPages(as: string, first: number, unreadOnly = false): Promise<{ pages: number[]; nodes: Node[] }> {
  const pages: number[] = [];
  const nodes: Node[] = [];
  let after: string | null = null;
  for (;;) {
    const page: { notifications: { nodes: Node[]; pageInfo: { hasNextPage: boolean; endCursor: string } } } = await inbox(as, { first, after, unreadOnly });
    pages.push(page.notifications.nodes.length);
    nodes.push(...page.notifications.nodes);
    if (!page.notifications.pageInfo.hasNextPage) return { pages, nodes };
    after = page.notifications.pageInfo.endCursor;
  }
}

describe('the inbox', () => {
  it('lists the viewer’s notifications of every organization, newest first, in pages, with exact counts', async () => {
    const me = await inbox(t.member, { first: 10 });
    expect(me.unreadNotificationCount).toBe(30);
    expect(me.notifications.totalCount).toBe(30);
    const { pages, nodes } = await allPages(t.member, 10);
    expect(pages).toEqual([10, 10, 10]);
    expect(new Set(nodes.map((n) => n.id)).size).toBe(30);
    const keys = nodes.map((n) => `${n.createdAt}|${n.id}`);
    expect(keys).toEqual([...keys].sort().reverse());
    expect(nodes.filter((n) => n.organizationId === otherOrg.id)).toHaveLength(3);
    expect(nodes.slice(0, 2).map((n) => n.title).sort()).toEqual(['Window 0', 'Window 1']);
  });

  it('shows each member only their own notifications', async () => {
    for (const as of [t.owner, t.admin, t.viewer]) {
      const me = await inbox(as, { first: 100 });
      expect(me.unreadNotificationCount).toBe(2);
      expect(me.notifications.nodes.map((n: Node) => n.title).sort()).toEqual(['Window 0', 'Window 1']);
    }
    expect((await inbox(otherOwner)).unreadNotificationCount).toBe(0);
    expect((await inbox(uniqueEmail('stranger'))).notifications.totalCount).toBe(0);
  });

  it('marks given ids read, ignoring others’ ids, unknown and malformed ones; unreadOnly follows; ids: null marks all', async () => {
    const mine = (await inbox(t.member, { first: 3 })).notifications.nodes.map((n: Node) => n.id);
    const ownersOwn = (await inbox(t.owner, { first: 1 })).notifications.nodes[0].id;
    const marked = ok(await app.gql(MARK_READ, { ids: [...mine, ownersOwn, randomUUID(), 'not-an-id'] }, { as: t.member })).markNotificationsRead;
    expect(marked).toBe(3);
    expect((await inbox(t.owner)).unreadNotificationCount).toBe(2);
    // Already read: nothing changes again.
    expect(ok(await app.gql(MARK_READ, { ids: mine }, { as: t.member })).markNotificationsRead).toBe(0);
    const me = await inbox(t.member, { first: 100, unreadOnly: true });
    expect(me.unreadNotificationCount).toBe(27);
    expect(me.notifications.totalCount).toBe(27);
    expect(me.notifications.nodes.map((n: Node) => n.id)).not.toEqual(expect.arrayContaining([mine[0]]));
    expect((await allPages(t.member, 10, true)).pages).toEqual([10, 10, 7]);
    const all = await inbox(t.member, { first: 100 });
    expect(all.notifications.nodes.filter((n: Node) => n.readAt !== null).map((n: Node) => n.id).sort()).toEqual([...mine].sort());

    expect(ok(await app.gql(MARK_READ, { ids: null }, { as: t.member })).markNotificationsRead).toBe(27);
    expect((await inbox(t.member)).unreadNotificationCount).toBe(0);
    expect((await inbox(t.admin)).unreadNotificationCount).toBe(2);
  });

  it('refuses a page size above 100 and a malformed cursor (BAD_USER_INPUT)', async () => {
    const big = await app.gql(INBOX, { first: 101 }, { as: t.member });
    expect(codes(big)).toEqual(['BAD_USER_INPUT']);
    expect(big.errors![0]!.extensions!.field).toBe('first');
    expect(codes(await app.gql(INBOX, { after: 'nope' }, { as: t.member }))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await app.gql(INBOX, {}, {}))).toEqual(['UNAUTHENTICATED']);
  });

  it('a removed member’s notifications (and preferences) of that organization are gone; those of their other organizations stay', async () => {
    ok(await app.gql(SET_PREFERENCE, { org: t.org.id, type: 'task.done', channel: 'EMAIL' }, { as: t.member }));
    ok(await app.gql(`mutation($org: ID!, $user: ID!) { removeMember(organizationId: $org, userId: $user) }`, { org: t.org.id, user: t.ids.member }, { as: t.owner }));
    const me = await inbox(t.member, { first: 100 });
    expect(me.notifications.totalCount).toBe(3);
    expect(me.notifications.nodes.every((n: Node) => n.organizationId === otherOrg.id)).toBe(true);
    const left = await readAll(app, `SELECT 1 FROM notifications WHERE organization_id = $1 AND user_id = $2 UNION ALL SELECT 1 FROM notification_preferences WHERE organization_id = $1 AND user_id = $2`, [
      t.org.id,
      t.ids.member,
    ]);
    expect(left).toEqual([]);
  });
});
