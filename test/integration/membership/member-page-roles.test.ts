import { ok, startTestApp, type TestApp } from '../../helpers/app';
import { addMember, createOrganization, uniqueEmail } from '../../helpers/factories';

/**
 * A page of members brings each member's role along: the statement that reads the page reads
 * every role it names (with the role's first member in the page), for every organization of the
 * batch and on every page, so asking for `role` costs no statement of its own.
 */
let app: TestApp;
const owner = uniqueEmail('roles-owner');
/** Per organization, the members' role keys in the order they joined (the owner first). */
const joined: Record<string, string[]> = {};

beforeAll(async () => {
  app = await startTestApp();
  for (const pattern of [
    ['member', 'admin', 'member', 'viewer', 'member', 'admin'],
    // A role first met at another place of the page than in the first organization.
    ['admin', 'member', 'viewer', 'viewer'],
  ]) {
    const org = await createOrganization(app, owner);
    for (const role of pattern) await addMember(app, org.id, uniqueEmail(role), role);
    joined[org.id] = ['owner', ...pattern];
  }
}, 60_000);
afterAll(async () => {
  await app?.close();
});

const PAGE = (fields: string) => `query($after: String) { me { organizations { nodes { id members(first: 3, after: $after) { pageInfo { endCursor } nodes { id ${fields} } } } } } }`;

async function page(fields: string, after: string | null = null) {
  const result = await app.gql<{ me: { organizations: { nodes: Array<{ id: string; members: { pageInfo: { endCursor: string }; nodes: Array<{ id: string; role?: { key: string; name: string } }> } }> } } }>(
    PAGE(fields),
    { after },
    { as: owner },
  );
  return { statements: Number(result.headers.get('x-sql-statements')), organizations: ok(result).me.organizations.nodes };
}

describe('roles come with the member page', () => {
  it('gives every member of every organization its own role, at no statement of its own', async () => {
    const bare = await page('');
    const withRoles = await page('role { key name }');
    expect(withRoles.statements).toBeGreaterThan(0);
    expect(withRoles.statements).toBe(bare.statements);
    expect(withRoles.organizations).toHaveLength(2);
    for (const o of withRoles.organizations) {
      expect(o.members.nodes.map((m) => m.role!.key)).toEqual(joined[o.id]!.slice(0, 3));
      for (const m of o.members.nodes) expect(m.role!.name).toBe(m.role!.key[0]!.toUpperCase() + m.role!.key.slice(1));
    }
  });

  it('on a later page too, where a role first appears after the cursor', async () => {
    const first = await page('role { key }');
    const [one] = first.organizations;
    // The second page of the first organization: member, viewer, member (viewer appears for the first time).
    const bare = await page('', one!.members.pageInfo.endCursor);
    const next = await page('role { key name }', one!.members.pageInfo.endCursor);
    expect(next.statements).toBe(bare.statements);
    const again = next.organizations.find((o) => o.id === one!.id)!;
    expect(again.members.nodes.map((m) => m.role!.key)).toEqual(joined[one!.id]!.slice(3, 6));
  });
});
