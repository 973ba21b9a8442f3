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
