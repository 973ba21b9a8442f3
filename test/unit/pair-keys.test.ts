import { groupedLoader, keyedLoader, PairMap, type PairKeys } from '../../src/database/loader-helpers';

/** Loaders keyed by a workspace's two ids keep them in nested maps (PairMap) instead of a string per key. */
interface Ref {
  organizationId: string;
  workspaceId: string;
}
interface Row extends Ref {
  name: string;
}
const REF: PairKeys<Ref> = { first: (r) => r.organizationId, second: (r) => r.workspaceId };

const rows: Row[] = [
  { organizationId: 'o1', workspaceId: 'w1', name: 'a' },
  { organizationId: 'o1', workspaceId: 'w2', name: 'b' },
  { organizationId: 'o1', workspaceId: 'w1', name: 'c' },
  // The same workspace id under another organization is another key.
  { organizationId: 'o2', workspaceId: 'w1', name: 'd' },
];

function counted<T>(answer: (keys: readonly Ref[]) => T[]) {
  const batches: Ref[][] = [];
  const load = async (keys: readonly Ref[]) => {
    batches.push([...keys]);
    return answer(keys);
  };
  return { batches, load };
}

describe('PairMap', () => {
  it('keeps keys apart by both ids, and deletes and clears', () => {
    const map = new PairMap<Ref, string>(REF);
    map.set({ organizationId: 'o1', workspaceId: 'w1' }, 'x').set({ organizationId: 'o2', workspaceId: 'w1' }, 'y');
    expect(map.get({ organizationId: 'o1', workspaceId: 'w1' })).toBe('x');
    expect(map.get({ organizationId: 'o2', workspaceId: 'w1' })).toBe('y');
    expect(map.get({ organizationId: 'o1', workspaceId: 'w2' })).toBeUndefined();
    expect(map.get({ organizationId: 'o3', workspaceId: 'w1' })).toBeUndefined();
    expect(map.delete({ organizationId: 'o1', workspaceId: 'w1' })).toBe(true);
    expect(map.delete({ organizationId: 'o1', workspaceId: 'w1' })).toBe(false);
    expect(map.delete({ organizationId: 'o9', workspaceId: 'w1' })).toBe(false);
    expect(map.get({ organizationId: 'o2', workspaceId: 'w1' })).toBe('y');
    map.clear();
    expect(map.get({ organizationId: 'o2', workspaceId: 'w1' })).toBeUndefined();
  });
});

describe('a grouped loader with pair keys', () => {
  it('groups the rows under each (organization, workspace), in row order, one batch for equal keys given as new objects', async () => {
    const { batches, load } = counted(() => rows);
    const loader = groupedLoader<Ref, Row>(load, (r) => r, REF);
    const [w1, w2, otherW1, none] = await Promise.all([
      loader.load({ organizationId: 'o1', workspaceId: 'w1' }),
      loader.load({ organizationId: 'o1', workspaceId: 'w2' }),
      loader.load({ organizationId: 'o2', workspaceId: 'w1' }),
      loader.load({ organizationId: 'o2', workspaceId: 'w2' }),
    ]);
    expect(w1.map((r) => r.name)).toEqual(['a', 'c']);
    expect(w2.map((r) => r.name)).toEqual(['b']);
    expect(otherW1.map((r) => r.name)).toEqual(['d']);
    expect(none).toEqual([]);
    // A key equal by its ids (a new object) is answered from the cache: no second batch.
    expect((await loader.load({ organizationId: 'o1', workspaceId: 'w1' })).map((r) => r.name)).toEqual(['a', 'c']);
    expect(batches).toHaveLength(1);
    // Cleared (after a mutation), it is read again; priming another organization's key leaves this one alone.
    loader.clear({ organizationId: 'o1', workspaceId: 'w1' });
    loader.prime({ organizationId: 'o3', workspaceId: 'w1' }, [{ organizationId: 'o3', workspaceId: 'w1', name: 'primed' }]);
    await loader.load({ organizationId: 'o1', workspaceId: 'w1' });
    expect(batches).toHaveLength(2);
    expect((await loader.load({ organizationId: 'o3', workspaceId: 'w1' })).map((r) => r.name)).toEqual(['primed']);
    expect((await loader.load({ organizationId: 'o2', workspaceId: 'w1' })).map((r) => r.name)).toEqual(['d']);
    expect(batches).toHaveLength(2);
  });

  it('a keyed loader with pair keys answers null for a missing pair', async () => {
    const { load } = counted(() => [rows[1]!, rows[3]!]);
    const loader = keyedLoader<Ref, Row>(load, (r) => r, REF);
    const found = await loader.loadMany([
      { organizationId: 'o1', workspaceId: 'w2' },
      { organizationId: 'o1', workspaceId: 'w1' },
      { organizationId: 'o2', workspaceId: 'w1' },
    ]);
    expect(found.map((r) => (r && !(r instanceof Error) ? r.name : r))).toEqual(['b', null, 'd']);
  });
});
