import pino from 'pino';
import { RequestContext } from '../../../src/context';
import { MembershipService } from '../../../src/modules/membership/membership.service';
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

const PAGE = (fields: string) =>
  `query($after: String) { me { organizations { nodes { id members(first: 3, after: $after) { pageInfo { endCursor } nodes { id ${fields} } } } } } }` +
  (fields.includes('...RoleName') ? ' fragment RoleName on Role { name }' : '');

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

describe("a role's key alone comes from the membership", () => {
  it('answers `role { key }` of every member from the membership itself: the same keys, at no statement of its own', async () => {
    const bare = await page('');
    const keys = await page('role { key }');
    expect(keys.statements).toBe(bare.statements);
    for (const o of keys.organizations) expect(o.members.nodes.map((m) => m.role)).toEqual(joined[o.id]!.slice(0, 3).map((key) => ({ key })));
  });

  it('reads the roles along when any selection of them asks for more than the key (aliases, edges), at no statement of its own', async () => {
    const bare = await page('');
    const mixed = await page('role { key } named: role { name }');
    expect(mixed.statements).toBe(bare.statements);
    for (const o of mixed.organizations) {
      const nodes = o.members.nodes as unknown as Array<{ role: { key: string }; named: { name: string } }>;
      expect(nodes.map((m) => m.role.key)).toEqual(joined[o.id]!.slice(0, 3));
      expect(nodes.map((m) => m.named.name)).toEqual(joined[o.id]!.slice(0, 3).map((key) => key[0]!.toUpperCase() + key.slice(1)));
    }
    const throughEdges = await app.gql<{ me: { organizations: { nodes: Array<{ id: string; members: { nodes: Array<{ role: { key: string } }>; edges: Array<{ node: { role: { name: string } } }> } }> } } }>(
      `{ me { organizations { nodes { id members(first: 3) { nodes { role { key } } edges { node { role { name } } } } } } } }`,
      {},
      { as: owner },
    );
    expect(Number(throughEdges.headers.get('x-sql-statements'))).toBe(bare.statements);
    for (const o of ok(throughEdges).me.organizations.nodes) {
      expect(o.members.nodes.map((m) => m.role.key)).toEqual(joined[o.id]!.slice(0, 3));
      expect(o.members.edges.map((e) => e.node.role.name)).toEqual(joined[o.id]!.slice(0, 3).map((key) => key[0]!.toUpperCase() + key.slice(1)));
    }
  });

  it("answers the viewer's own memberships' `role { key }` without looking a role up", async () => {
    const query = (fields: string) => app.gql<{ me: { memberships: Array<{ role?: { key: string } }> } }>(`{ me { memberships { organization { id } ${fields} } } }`, {}, { as: owner });
    const bare = await query('');
    const keys = await query('role { key }');
    const named = await query('role { key name }');
    expect(Number(keys.headers.get('x-sql-statements'))).toBe(Number(bare.headers.get('x-sql-statements')));
    // A field beyond the key is looked up (one statement for all of them).
    expect(Number(named.headers.get('x-sql-statements'))).toBe(Number(bare.headers.get('x-sql-statements')) + 1);
    expect(ok(keys).me.memberships.map((m) => m.role)).toEqual([{ key: 'owner' }, { key: 'owner' }]);
    expect(ok(named).me.memberships.map((m) => m.role)).toEqual([
      { key: 'owner', name: 'Owner' },
      { key: 'owner', name: 'Owner' },
    ]);
  });

  it('pages read roles along only for a selection that asks more of them than the key (aliases and fragments too)', async () => {
    const list = jest.spyOn(MembershipService.prototype, 'list');
    try {
      const rolesRead = async (fields: string) => {
        list.mockClear();
        await page(fields);
        return list.mock.calls.map(([, , , options]) => options.roles);
      };
      expect(await rolesRead('')).toEqual([false, false]);
      expect(await rolesRead('role { key }')).toEqual([false, false]);
      expect(await rolesRead('role { __typename k: key }')).toEqual([false, false]);
      expect(await rolesRead('role { ... on Role { key } }')).toEqual([false, false]);
      expect(await rolesRead('role { key name }')).toEqual([true, true]);
      expect(await rolesRead('role { key } named: role { name }')).toEqual([true, true]);
      expect(await rolesRead('role { ...RoleName }')).toEqual([true, true]);
    } finally {
      list.mockRestore();
    }
  });

  it('a page read without roles primes none; with roles, the roles it names', async () => {
    const organizationId = Object.keys(joined)[0]!;
    const ctx = RequestContext.forSystem({ config: app.config, db: app.db, envelope: app.envelope, logger: pino({ level: 'silent' }) }, organizationId, 'test:roles');
    try {
      const filter = { roleKey: null, pattern: null };
      const without = await ctx.loaders.memberPage.load({ ownerId: organizationId, limit: 10, after: null, filter: { ...filter, roles: false } });
      expect(without.map((m) => m.roleKey)).toEqual(joined[organizationId]);
      for (const key of ['owner', 'admin', 'member', 'viewer']) expect(ctx.loaders.roleByKey.peek({ organizationId, key })).toBeUndefined();
      const along = await ctx.loaders.memberPage.load({ ownerId: organizationId, limit: 10, after: null, filter: { ...filter, roles: true } });
      expect(along.map((m) => m.roleKey)).toEqual(joined[organizationId]);
      for (const key of ['owner', 'admin', 'member', 'viewer']) expect(ctx.loaders.roleByKey.peek({ organizationId, key })?.name).toBe(key[0]!.toUpperCase() + key.slice(1));
    } finally {
      await ctx.tx.finish();
    }
  });
});
