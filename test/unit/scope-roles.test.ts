import { randomUUID } from 'node:crypto';
import { ScopeRoles } from '../../src/database/tenant-transaction';

/** The session's organizations and roles, read from the bootstrap's lists without splitting them for one lookup. */
describe('ScopeRoles', () => {
  const ids = Array.from({ length: 5 }, () => randomUUID());
  const organizations = ids.join(',');
  const keys = 'owner,admin,member,custom-role,viewer';

  it('answers get and has from the lists exactly as the split map would, first, middle and last entry included', () => {
    const roles = new ScopeRoles();
    roles.adopt(organizations, keys);
    expect(ids.map((id) => roles.get(id))).toEqual(['owner', 'admin', 'member', 'custom-role', 'viewer']);
    expect(roles.has(ids[4]!)).toBe(true);
    expect(roles.get(randomUUID())).toBeUndefined();
    // Only whole ids at a pair's start: a prefix, a role key or a suffix is not an organization.
    expect(roles.get(ids[1]!.slice(0, 35))).toBeUndefined();
    expect(roles.get('admin')).toBeUndefined();
    expect(roles.has(`${ids[1]!.slice(1)}:`)).toBe(false);
    // 36 characters found across two ids of the list are not an organization either.
    expect(roles.get(`${ids[1]!.slice(1)},`)).toBeUndefined();
    expect(roles.get(`${ids[2]!.slice(10)},${ids[3]!.slice(0, 9)}`)).toBeUndefined();
  });

  it('grants nothing to an id without a role when the lists are of unequal length', () => {
    const roles = new ScopeRoles();
    roles.adopt(ids.slice(0, 3).join(','), 'owner,admin');
    expect(ids.slice(0, 3).map((id) => roles.get(id))).toEqual(['owner', 'admin', undefined]);
    expect([...roles]).toEqual([
      [ids[0], 'owner'],
      [ids[1], 'admin'],
    ]);
  });

  it('reads a list of one organization', () => {
    const roles = new ScopeRoles();
    roles.adopt(ids[3]!, 'custom-role');
    expect(roles.get(ids[3]!)).toBe('custom-role');
    expect(roles.get(ids[2]!)).toBeUndefined();
    expect([...roles]).toEqual([[ids[3], 'custom-role']]);
  });

  it('splits into the map for the whole set, and changes apply on top of the lists', () => {
    const roles = new ScopeRoles();
    roles.set(ids[0]!, 'api-key');
    roles.adopt(organizations, keys);
    // The lists came after: they win for an id they name.
    expect(roles.get(ids[0]!)).toBe('owner');
    const extra = randomUUID();
    roles.set(extra, 'member');
    roles.delete(ids[2]!);
    expect(roles.size).toBe(5);
    expect([...roles.keys()]).toEqual([ids[0], ids[1], ids[3], ids[4], extra]);
    expect(new Map(roles).get(ids[3]!)).toBe('custom-role');
    roles.clear();
    expect(roles.size).toBe(0);
    expect(roles.get(ids[1]!)).toBeUndefined();
  });
});
