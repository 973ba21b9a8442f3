import DataLoader from 'dataloader';

/** A loader whose batch returns rows; results come back in key order, missing keys as null. */
export function keyedLoader<K, V>(load: (keys: readonly K[]) => Promise<V[]>, keyOf: (row: V) => K, cacheKey?: (key: K) => unknown): DataLoader<K, V | null, unknown> {
  return new DataLoader<K, V | null, unknown>(
    async (keys) => {
      const rows = await load(keys);
      const byKey = new Map(rows.map((r) => [cacheKey ? cacheKey(keyOf(r)) : keyOf(r), r]));
      return keys.map((k) => byKey.get(cacheKey ? cacheKey(k) : k) ?? null);
    },
    cacheKey ? { cacheKeyFn: cacheKey } : undefined,
  );
}

/** A loader whose batch returns rows grouped under each key (an empty list when none). */
export function groupedLoader<K, V>(load: (keys: readonly K[]) => Promise<V[]>, keyOf: (row: V) => K, cacheKey?: (key: K) => unknown): DataLoader<K, V[], unknown> {
  return new DataLoader<K, V[], unknown>(
    async (keys) => {
      const rows = await load(keys);
      const groups = new Map<unknown, V[]>();
      for (const row of rows) {
        const k = cacheKey ? cacheKey(keyOf(row)) : keyOf(row);
        const list = groups.get(k) ?? [];
        list.push(row);
        groups.set(k, list);
      }
      return keys.map((k) => groups.get(cacheKey ? cacheKey(k) : k) ?? []);
    },
    cacheKey ? { cacheKeyFn: cacheKey } : undefined,
  );
}

/** Counts per key: `SELECT key, count(*) … GROUP BY key` rows into numbers in key order. */
export function countLoader(load: (keys: readonly string[]) => Promise<Array<{ key: string; count: string | number }>>): DataLoader<string, number> {
  return new DataLoader<string, number>(async (keys) => {
    const rows = await load(keys);
    const byKey = new Map(rows.map((r) => [r.key, Number(r.count)]));
    return keys.map((k) => byKey.get(k) ?? 0);
  });
}

/** A keyset page of one owner's list (an organization's workspaces, its members…). */
export interface OwnedPageKey<F> {
  ownerId: string;
  /** Rows wanted, plus one look-ahead row. */
  limit: number;
  after: [string, string] | null;
  /** What else narrows the list (visibility, filters); pages with equal filters are fetched together. */
  filter: F;
}

/**
 * Pages of many owners' lists in one statement per distinct (limit, cursor, filter): a nested
 * list under a list of parents stays one query however many parents there are. `fetch` returns
 * the rows of every owner in `ownerIds`, at most `limit` per owner after the cursor (e.g. with
 * row_number() OVER (PARTITION BY owner …)).
 */
export function ownedPageLoader<T, F>(
  fetch: (ownerIds: string[], limit: number, after: [string, string] | null, filter: F) => Promise<T[]>,
  ownerOf: (row: T) => string,
): DataLoader<OwnedPageKey<F>, T[], string> {
  const group = (k: OwnedPageKey<F>) => JSON.stringify([k.limit, k.after, k.filter]);
  const cacheKey = (k: OwnedPageKey<F>) => `${k.ownerId}:${group(k)}`;
  return new DataLoader<OwnedPageKey<F>, T[], string>(
    async (keys) => {
      const groups = new Map<string, OwnedPageKey<F>[]>();
      for (const key of keys) groups.set(group(key), [...(groups.get(group(key)) ?? []), key]);
      const results = new Map<string, T[]>();
      for (const [g, members] of groups) {
        const { limit, after, filter } = members[0]!;
        for (const row of await fetch([...new Set(members.map((k) => k.ownerId))], limit, after, filter)) {
          const k = `${ownerOf(row)}:${g}`;
          results.set(k, [...(results.get(k) ?? []), row]);
        }
      }
      return keys.map((k) => results.get(cacheKey(k)) ?? []);
    },
    { cacheKeyFn: cacheKey },
  );
}

/** Counts of many owners' lists, one statement per distinct filter. */
export function ownedCountLoader<F>(count: (ownerIds: string[], filter: F) => Promise<Array<{ owner: string; n: number }>>): DataLoader<{ ownerId: string; filter: F }, number, string> {
  const cacheKey = (k: { ownerId: string; filter: F }) => `${k.ownerId}:${JSON.stringify(k.filter)}`;
  return new DataLoader<{ ownerId: string; filter: F }, number, string>(
    async (keys) => {
      const counts = new Map<string, number>();
      const filters = new Map<string, F>();
      for (const k of keys) filters.set(JSON.stringify(k.filter), k.filter);
      for (const [f, filter] of filters) {
        const owners = [...new Set(keys.filter((k) => JSON.stringify(k.filter) === f).map((k) => k.ownerId))];
        for (const r of await count(owners, filter)) counts.set(`${r.owner}:${f}`, Number(r.n));
      }
      return keys.map((k) => counts.get(cacheKey(k)) ?? 0);
    },
    { cacheKeyFn: cacheKey },
  );
}
