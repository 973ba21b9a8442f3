import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { addMember, createOrganization, uniqueEmail } from '../../helpers/factories';

/**
 * A page of members brings each member's user along, with only the columns its selection needs
 * (id, email, name, avatarUrl) or with all of them: either way every user field is answered, with
 * the same values, at no statement of its own, and a lean user never answers a field it lacks.
 */
let app: TestApp;
const owner = uniqueEmail('users-owner');
let organizationId: string;
/** The members in the order they joined (the owner first), with the name each one's token gave. */
const members: Array<{ email: string; name: string; id: string }> = [];

beforeAll(async () => {
  app = await startTestApp();
  const org = await createOrganization(app, owner);
  organizationId = org.id;
  // The owner's name comes from a later token (the user is refreshed from it).
  const ownerName = 'Owner Person';
  const ownerId = ok(await app.gql<{ me: { user: { id: string } } }>(`{ me { user { id } } }`, {}, { token: await app.token(owner, { name: ownerName }) })).me.user.id;
  members.push({ email: owner, name: ownerName, id: ownerId });
  for (const [i, role] of ['member', 'admin', 'viewer'].entries()) {
    const email = uniqueEmail(role);
    const name = `Person ${i}`;
    // Invited by the owner: the inviter is read whole (userById) beside the page's lean users.
    members.push({ email, name, id: await addMember(app, organizationId, email, role, { name, invitedBy: ownerId }) });
  }
}, 60_000);
afterAll(async () => {
  await app?.close();
});

interface UserOut {
  id?: string;
  email?: string;
  name?: string | null;
  avatarUrl?: string | null;
  createdAt?: string;
}

async function page(nodeFields: string) {
  const result = await app.gql<{ organization: { members: { nodes: Array<Record<string, UserOut>> } } }>(
    `query($id: ID!) { organization(id: $id) { id members(first: 10) { nodes { id ${nodeFields} } } } }`,
    { id: organizationId },
    { as: owner },
  );
  return { statements: Number(result.headers.get('x-sql-statements')), nodes: ok(result).organization.members.nodes };
}

describe('users come with the member page, lean or whole', () => {
  it('answers the list fields of every member from lean users, at no statement of its own', async () => {
    const bare = await page('');
    const lean = await page('user { id email name avatarUrl }');
    expect(bare.statements).toBeGreaterThan(0);
    expect(lean.statements).toBe(bare.statements);
    expect(lean.nodes.map((n) => n.user)).toEqual(members.map((m) => ({ id: m.id, email: m.email, name: m.name, avatarUrl: null })));
  });

  it('reads whole users when a field the lean columns lack is asked, with the same values', async () => {
    const bare = await page('');
    const whole = await page('user { id email name avatarUrl createdAt }');
    expect(whole.statements).toBe(bare.statements);
    expect(whole.nodes.map(({ user }) => ({ ...user, createdAt: undefined }))).toEqual(members.map((m) => ({ id: m.id, email: m.email, name: m.name, avatarUrl: null, createdAt: undefined })));
    for (const { user } of whole.nodes) expect(Number.isNaN(Date.parse(user!.createdAt!))).toBe(false);
  });

  it('serves a lean and a whole selection of the same users in one page (aliases), at no statement of their own', async () => {
    const bare = await page('');
    const whole = await page('user { id createdAt }');
    const mixed = await page('lean: user { email name } whole: user { email createdAt }');
    expect(mixed.statements).toBe(bare.statements);
    expect(mixed.nodes.map((n) => n.lean)).toEqual(members.map((m) => ({ email: m.email, name: m.name })));
    expect(mixed.nodes.map((n) => n.whole)).toEqual(whole.nodes.map((n, i) => ({ email: members[i]!.email, createdAt: n.user!.createdAt })));
  });

  it('gives the lean and the whole reading through edges as through nodes, at no statement of their own', async () => {
    const bare = await page('');
    const edges = async (userFields: string) => {
      const result = await app.gql<{ organization: { members: { edges: Array<{ node: { user: UserOut } }> } } }>(
        `query($id: ID!) { organization(id: $id) { members(first: 10) { edges { node { user { ${userFields} } } } nodes { id } } } }`,
        { id: organizationId },
        { as: owner },
      );
      return { statements: Number(result.headers.get('x-sql-statements')), users: ok(result).organization.members.edges.map((e) => e.node.user) };
    };
    const lean = await edges('email name');
    expect(lean.statements).toBe(bare.statements);
    expect(lean.users).toEqual(members.map((m) => ({ email: m.email, name: m.name })));
    const whole = await edges('email createdAt');
    expect(whole.statements).toBe(bare.statements);
    expect(whole.users.map((u) => u.email)).toEqual(members.map((m) => m.email));
    for (const u of whole.users) expect(Number.isNaN(Date.parse(u.createdAt!))).toBe(false);
  });

  it('never hands a lean user to a field that reads whole users: the owner as inviter beside the page of lean users', async () => {
    const result = await page('user { id email } invitedBy { id email createdAt }');
    expect(result.nodes.map((n) => n.user)).toEqual(members.map((m) => ({ id: m.id, email: m.email })));
    const inviters = result.nodes.slice(1).map((n) => n.invitedBy!);
    expect(inviters.map((u) => ({ id: u.id, email: u.email }))).toEqual(members.slice(1).map(() => ({ id: members[0]!.id, email: owner })));
    for (const u of inviters) expect(Number.isNaN(Date.parse(u.createdAt!))).toBe(false);
    expect(result.nodes[0]!.invitedBy).toBeNull();
  });

  it('answers a lean user of a membership outside any page with the whole user the request already read, at no statement of its own', async () => {
    const member = members[1]!;
    const bare = await app.gql(`{ me { memberships { id } } }`, {}, { as: member.email });
    const result = await app.gql<{ me: { memberships: Array<{ user: UserOut }> } }>(`{ me { memberships { id user { id email name } } } }`, {}, { as: member.email });
    expect(ok(result).me.memberships.map((m) => m.user)).toEqual([{ id: member.id, email: member.email, name: member.name }]);
    ok(bare);
    expect(Number(result.headers.get('x-sql-statements'))).toBe(Number(bare.headers.get('x-sql-statements')));
  });

  it('shows no member, lean or whole, to someone outside the organization', async () => {
    for (const fields of ['email', 'email createdAt']) {
      const outsider = await app.gql(`query($id: ID!) { organization(id: $id) { members(first: 10) { nodes { user { ${fields} } } } } }`, { id: organizationId }, { as: uniqueEmail('outsider') });
      expect(outsider.data?.organization ?? null).toBeNull();
      expect(codes(outsider)).toEqual(['NOT_FOUND']);
    }
  });
});
