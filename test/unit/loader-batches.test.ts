import { withUuidArrayLiterals } from '../../src/database/database';
import { groupedLoader, ownedPageLoader } from '../../src/database/loader-helpers';

/** How a batch's parameters and pages travel: uuid arrays as one literal, pages grouped by shape then owner. */
describe('withUuidArrayLiterals', () => {
  const a = '27ec663f-2dd7-48e6-9ba3-2bf49da5fcd2';
  const b = '7D27B096-D763-4446-B0DC-49990046FD2C';

  it('writes an array of uuids as one array literal, other parameters as they were', () => {
    expect(withUuidArrayLiterals([[a, b], 'x', 3, null])).toEqual([`{${a},${b}}`, 'x', 3, null]);
  });

  it('leaves to pg every array that is not only uuids, and an empty one', () => {
    const mixed = [a, 'not-a-uuid'];
    const quoted = [`${a}"`];
    const withNull = [a, null];
    const padded = [` ${a}`];
    const numbers = [1, 2];
    const params = [mixed, quoted, withNull, padded, numbers, []];
    const out = withUuidArrayLiterals(params);
    expect(out).toBe(params);
    expect(out).toEqual([mixed, quoted, withNull, padded, numbers, []]);
  });

  it('leaves to pg an element that would pass for two ids, or hide something between them', () => {
    const pair = [`${a},${b}`];
    const commaInside = ['27ec663f-2dd7-48e6-9ba3-2bf49da5f,d2'];
    const braced = ['{7ec663f-2dd7-48e6-9ba3-2bf49da5fcd2'];
    const trailing = [a, `${b.slice(0, 35)},`];
    const params = [pair, commaInside, braced, trailing];
    expect(withUuidArrayLiterals(params)).toBe(params);
  });

  it('does not change the caller’s array', () => {
    const params = [[a]];
    expect(withUuidArrayLiterals(params)).toEqual([`{${a}}`]);
    expect(params).toEqual([[a]]);
  });
});

describe('ownedPageLoader', () => {
  interface Row {
    owner: string;
    n: number;
  }
  it('fetches once per page shape and hands every owner its own rows of its own shape', async () => {
    const calls: Array<{ owners: string[]; limit: number; filter: string }> = [];
    const loader = ownedPageLoader<Row, string>(async (owners, limit, _after, filter) => {
      calls.push({ owners: [...owners].sort(), limit, filter });
      // Every owner has three rows; a page returns `limit` of them, tagged with the filter's length.
      return owners.flatMap((owner) => [1, 2, 3].slice(0, limit).map((i) => ({ owner, n: i * 10 + filter.length })));
    }, (r) => r.owner);
    const [p1, p2, p3, p4] = await Promise.all([
      loader.load({ ownerId: 'o1', limit: 2, after: null, filter: 'a' }),
      loader.load({ ownerId: 'o2', limit: 2, after: null, filter: 'a' }),
      loader.load({ ownerId: 'o1', limit: 3, after: null, filter: 'bb' }),
      loader.load({ ownerId: 'o3', limit: 2, after: null, filter: 'a' }),
    ]);
    expect(calls).toEqual([
      { owners: ['o1', 'o2', 'o3'], limit: 2, filter: 'a' },
      { owners: ['o1'], limit: 3, filter: 'bb' },
    ]);
    expect(p1).toEqual([{ owner: 'o1', n: 11 }, { owner: 'o1', n: 21 }]);
    expect(p2).toEqual([{ owner: 'o2', n: 11 }, { owner: 'o2', n: 21 }]);
    expect(p3).toEqual([{ owner: 'o1', n: 12 }, { owner: 'o1', n: 22 }, { owner: 'o1', n: 32 }]);
    expect(p4).toEqual([{ owner: 'o3', n: 11 }, { owner: 'o3', n: 21 }]);
  });

  it('answers an owner without rows an empty page', async () => {
    const loader = ownedPageLoader<Row, null>(async () => [{ owner: 'o1', n: 1 }], (r) => r.owner);
    const [p1, p2] = await Promise.all([
      loader.load({ ownerId: 'o1', limit: 5, after: null, filter: null }),
      loader.load({ ownerId: 'o2', limit: 5, after: null, filter: null }),
    ]);
    expect(p1).toEqual([{ owner: 'o1', n: 1 }]);
    expect(p2).toEqual([]);
  });
});

describe('groupedLoader', () => {
  interface Row {
    org: string;
    ws: string;
    n: number;
  }
  const scheme = { first: (r: { org: string; ws: string }) => r.org, second: (r: { org: string; ws: string }) => r.ws };

  it('hands every key its own rows in their order, whether they come in runs or interleaved', async () => {
    const rows: Row[] = [
      { org: 'o1', ws: 'w1', n: 1 },
      { org: 'o1', ws: 'w1', n: 2 },
      { org: 'o1', ws: 'w2', n: 3 },
      { org: 'o1', ws: 'w1', n: 4 },
      { org: 'o2', ws: 'w1', n: 5 },
      { org: 'o2', ws: 'w1', n: 6 },
      { org: 'o1', ws: 'w2', n: 7 },
    ];
    const loader = groupedLoader<{ org: string; ws: string }, Row>(async () => rows, (r) => r, scheme);
    const [a, b, c, d] = await Promise.all([
      loader.load({ org: 'o1', ws: 'w1' }),
      loader.load({ org: 'o1', ws: 'w2' }),
      loader.load({ org: 'o2', ws: 'w1' }),
      loader.load({ org: 'o2', ws: 'w2' }),
    ]);
    expect([a, b, c, d].map((list) => list.map((r) => r.n))).toEqual([[1, 2, 4], [3, 7], [5, 6], []]);
  });

  it('tells keys apart by the whole key: the same workspace id under another organization is another group', async () => {
    const rows: Row[] = [
      { org: 'o1', ws: 'w', n: 1 },
      { org: 'o2', ws: 'w', n: 2 },
      { org: 'o1', ws: 'w', n: 3 },
    ];
    const loader = groupedLoader<{ org: string; ws: string }, Row>(async () => rows, (r) => r, scheme);
    const [a, b] = await Promise.all([loader.load({ org: 'o1', ws: 'w' }), loader.load({ org: 'o2', ws: 'w' })]);
    expect([a.map((r) => r.n), b.map((r) => r.n)]).toEqual([[1, 3], [2]]);
  });
});
