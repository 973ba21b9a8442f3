import DataLoader from 'dataloader';
import { loaderSetClass } from '../../src/database/loader-helpers';

/** A request's loader set (src/context.ts): groups built on first use, one cache cleared after a mutation. */
type Set2 = { a: DataLoader<number, number>; b: DataLoader<number, number> } & { c: DataLoader<number, number> };

function counting() {
  const built: string[] = [];
  const batches: number[][] = [];
  const loader = (name: string) => {
    built.push(name);
    return new DataLoader<number, number>(async (keys) => {
      batches.push([...keys]);
      return keys.map((k) => k * 10);
    });
  };
  return { built, batches, loader };
}

describe('loaderSetClass', () => {
  it('builds a group only when one of its loaders is read, once per set, and a group may use an earlier one', async () => {
    const Loaders = loaderSetClass<Set2>();
    const first = counting();
    // The first set learns the layout by building every group.
    new Loaders([() => ({ a: first.loader('a'), b: first.loader('b') }), (s) => ({ c: s.a && first.loader('c') })]);
    expect(first.built).toEqual(['a', 'b', 'c']);

    const later = counting();
    const set = new Loaders([() => ({ a: later.loader('a'), b: later.loader('b') }), (s) => ({ c: s.b && later.loader('c') })]);
    expect(later.built).toEqual([]);
    expect(await set.c.load(2)).toBe(20);
    expect(later.built).toEqual(['a', 'b', 'c']);
    expect(set.a).toBe(set.a);
    expect(await Promise.all([set.a.load(1), set.a.load(1)])).toEqual([10, 10]);
    expect(later.batches).toEqual([[2], [1]]);
  });

  it('clearAll empties the cache of every group built, and builds none', async () => {
    const Loaders = loaderSetClass<Set2>();
    const t = counting();
    new Loaders([() => ({ a: t.loader('a'), b: t.loader('b') }), () => ({ c: t.loader('c') })]);
    const u = counting();
    const set = new Loaders([() => ({ a: u.loader('a'), b: u.loader('b') }), () => ({ c: u.loader('c') })]);
    await set.a.load(1);
    set.clearAll();
    expect(u.built).toEqual(['a', 'b']);
    await set.a.load(1);
    expect(u.batches).toEqual([[1], [1]]);
  });

  it('a first set whose factory fails leaves nothing behind: the next one learns the layout and works', async () => {
    const Loaders = loaderSetClass<Set2>();
    const t = counting();
    const failing = () => {
      throw new Error('metadata not ready');
    };
    expect(() => new Loaders([() => ({ a: t.loader('a'), b: t.loader('b') }), failing])).toThrow('metadata not ready');
    const set = new Loaders([() => ({ a: t.loader('a'), b: t.loader('b') }), () => ({ c: t.loader('c') })]);
    expect(await set.c.load(3)).toBe(30);
    expect(await new Loaders([() => ({ a: t.loader('a'), b: t.loader('b') }), () => ({ c: t.loader('c') })]).a.load(4)).toBe(40);
  });

  it('refuses two groups naming the same loader, or a loader named like the set’s own members', () => {
    const t = counting();
    const Twice = loaderSetClass<Set2>();
    expect(() => new Twice([() => ({ a: t.loader('a') }), () => ({ a: t.loader('a2') })])).toThrow('Loader "a" is defined twice');
    const Clash = loaderSetClass<{ clearAll: DataLoader<number, number> }>();
    expect(() => new Clash([() => ({ clearAll: t.loader('x') })])).toThrow('Loader "clearAll" is defined twice');
  });
});
