import { andThen, groupedLoader, keyedLoader, loadNow, type PairKeys } from '../../src/database/loader-helpers';

/**
 * PrimedLoader (what keyedLoader and groupedLoader build): a value primed — read along with its
 * parent — is answered at once by `peek` and `loadNow`; anything else goes through the batch, as
 * DataLoader keeps it. A field resolver answering a peeked value must never answer something
 * `load` would not.
 */
interface User {
  id: string;
  name: string;
}

function users(stored: User[]) {
  const batches: string[][] = [];
  const loader = keyedLoader<string, User>(
    async (ids) => {
      batches.push([...ids]);
      return stored.filter((u) => ids.includes(u.id));
    },
    (u) => u.id,
  );
  return { loader, batches };
}

describe('PrimedLoader', () => {
  it('answers a primed value at once, and the same value from load, without a batch', async () => {
    const { loader, batches } = users([{ id: 'u1', name: 'stored' }]);
    const primed = { id: 'u1', name: 'primed' };
    loader.prime('u1', primed);
    expect(loader.peek('u1')).toBe(primed);
    expect(loadNow(loader, 'u1')).toBe(primed);
    await expect(loader.load('u1')).resolves.toBe(primed);
    expect(batches).toEqual([]);
  });

  it('peeks a primed null (someone row-level security hides) as null, not as unknown', () => {
    const { loader } = users([]);
    loader.prime('u2', null);
    expect(loader.peek('u2')).toBeNull();
    expect(loadNow(loader, 'u2')).toBeNull();
  });

  it('leaves unprimed keys to the batch: loadNow answers a promise', async () => {
    const { loader, batches } = users([{ id: 'u1', name: 'stored' }]);
    expect(loader.peek('u1')).toBeUndefined();
    const answer = loadNow(loader, 'u1');
    expect(answer).toBeInstanceOf(Promise);
    await expect(answer).resolves.toEqual({ id: 'u1', name: 'stored' });
    expect(batches).toEqual([['u1']]);
    // A value that came from a batch is not peeked (only primed ones are): load answers it from the cache.
    expect(loader.peek('u1')).toBeUndefined();
  });

  it('keeps what load already has, as DataLoader does: a later prime of the same key is not peeked', async () => {
    const { loader } = users([{ id: 'u1', name: 'stored' }]);
    const loading = loader.load('u1');
    loader.prime('u1', { id: 'u1', name: 'primed later' });
    expect(loader.peek('u1')).toBeUndefined();
    await expect(loading).resolves.toEqual({ id: 'u1', name: 'stored' });
    await expect(loader.load('u1')).resolves.toEqual({ id: 'u1', name: 'stored' });
  });

  it('forgets a primed value on clear and clearAll (after a mutation the next read goes to the database)', async () => {
    const { loader, batches } = users([{ id: 'u1', name: 'stored' }, { id: 'u2', name: 'other' }]);
    loader.prime('u1', { id: 'u1', name: 'primed' });
    loader.clear('u1');
    expect(loader.peek('u1')).toBeUndefined();
    await expect(loader.load('u1')).resolves.toEqual({ id: 'u1', name: 'stored' });
    loader.prime('u2', { id: 'u2', name: 'primed' });
    loader.clearAll();
    expect(loader.peek('u2')).toBeUndefined();
    await expect(loader.load('u2')).resolves.toEqual({ id: 'u2', name: 'other' });
    expect(batches).toEqual([['u1'], ['u2']]);
    // clear then prime (how the user primer refreshes a user) replaces the value.
    loader.clear('u1').prime('u1', { id: 'u1', name: 'fresh' });
    expect(loader.peek('u1')).toEqual({ id: 'u1', name: 'fresh' });
  });

  it('never peeks a primed error: load rejects with it', async () => {
    const { loader } = users([]);
    loader.prime('u3', new Error('gone'));
    expect(loader.peek('u3')).toBeUndefined();
    await expect(loader.load('u3')).rejects.toThrow('gone');
  });

  it('tells pair keys apart by both ids (grouped lists primed per workspace)', () => {
    interface Ref {
      organizationId: string;
      workspaceId: string;
    }
    const REF: PairKeys<Ref> = { first: (r) => r.organizationId, second: (r) => r.workspaceId };
    const loader = groupedLoader<Ref, Ref & { name: string }>(async () => [], (r) => r, REF);
    const list = [{ organizationId: 'o1', workspaceId: 'w1', name: 'env' }];
    loader.prime({ organizationId: 'o1', workspaceId: 'w1' }, list);
    expect(loader.peek({ organizationId: 'o1', workspaceId: 'w1' })).toBe(list);
    expect(loader.peek({ organizationId: 'o2', workspaceId: 'w1' })).toBeUndefined();
    loader.clear({ organizationId: 'o1', workspaceId: 'w1' });
    expect(loader.peek({ organizationId: 'o1', workspaceId: 'w1' })).toBeUndefined();
  });
});

describe('andThen', () => {
  it('applies at once to a value, after it to a promise, and passes a thrown error on as it is', async () => {
    expect(andThen(2, (n) => n * 3)).toBe(6);
    await expect(andThen(Promise.resolve(2), (n) => n * 3)).resolves.toBe(6);
    expect(() =>
      andThen(null, () => {
        throw new Error('not found');
      }),
    ).toThrow('not found');
    await expect(
      andThen(Promise.resolve(null), () => {
        throw new Error('not found');
      }),
    ).rejects.toThrow('not found');
  });
});
