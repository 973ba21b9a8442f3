import DataLoader from 'dataloader';
import { isThenable } from '../common/thenable';

/** A loader whose batch returns rows; results come back in key order, missing keys as null. */
export function keyedLoader<K, V>(load: (keys: readonly K[]) => Promise<V[]>, keyOf: (row: V) => K, scheme?: KeyScheme<K>): PrimedLoader<K, V | null> {
  return new PrimedLoader<K, V | null>(async (keys) => {
    const rows = await load(keys);
    const byKey = mapOf<K, V>(scheme);
    for (const row of rows) byKey.set(keyOf(row), row);
    return keys.map((k) => byKey.get(k) ?? null);
  }, scheme);
}

/**
 * A DataLoader whose primed values can also be read at once (`peek`): a nested field whose value
 * came along with its parent's row (a member's user and role, a workspace's environments…) is
 * answered by its resolver as a plain value instead of a promise — no promise, no continuation
 * and no turn of the microtask queue per field for the executor (Q2: 21 members × user and role).
 * Only primed values are peeked, exactly as DataLoader keeps them: a key already in its cache
 * (being loaded, or primed before) is left as it is by `prime` (DataLoader's rule), and so by
 * peek; `clear` and `clearAll` forget both. An Error primed is never peeked (load rejects with it).
 */
export class PrimedLoader<K, V> extends DataLoader<K, V, unknown> {
  private readonly cache: CacheMap<K, Promise<V>>;
  /** Primed values under the cache's own keys; made on the first prime: most of a request's loaders are never primed. */
  private primed: DataLoader.CacheMap<unknown, V> | null = null;

  constructor(
    batch: DataLoader.BatchLoadFn<K, V>,
    private readonly scheme?: KeyScheme<K>,
  ) {
    const cache = cacheMapOf<K, Promise<V>>(scheme);
    super(batch, { cacheMap: cache.map, cacheKeyFn: cache.keyFn });
    this.cache = cache;
  }

  /** The value primed for `key`, or undefined when it was not primed (then `load` it). */
  peek(key: K): V | undefined {
    return this.primed === null ? undefined : (this.primed.get(this.cache.keyFn(key)) as V | undefined);
  }

  override prime(key: K, value: V | PromiseLike<V> | Error): this {
    const k = this.cache.keyFn(key);
    if (this.cache.map.get(k) === undefined && !(value instanceof Error) && !isThenable(value)) {
      (this.primed ??= cacheMapOf<K, V>(this.scheme).map).set(k, value as V);
    }
    return super.prime(key, value);
  }

  override clear(key: K): this {
    this.primed?.delete(this.cache.keyFn(key));
    return super.clear(key);
  }

  override clearAll(): this {
    this.primed?.clear();
    return super.clearAll();
  }
}

/** A DataLoader cache of keys told apart by `scheme`: the map and the function from a key to its entry's key. */
interface CacheMap<K, V> {
  map: DataLoader.CacheMap<unknown, V>;
  keyFn: (key: K) => unknown;
}

/** The one place a scheme decides how keys are told apart: pair keys in a PairMap, anything else in a Map by the scheme's function of the key (or the key itself). */
function cacheMapOf<K, V>(scheme: KeyScheme<K> | undefined): CacheMap<K, V> {
  if (scheme && typeof scheme !== 'function') return { map: new PairMap<K, V>(scheme) as unknown as DataLoader.CacheMap<unknown, V>, keyFn: (key) => key };
  return { map: new Map<unknown, V>(), keyFn: scheme ?? ((key: K): unknown => key) };
}

/** A value now or later: `then` applied at once to a value, after it to a promise (a resolver answering a peeked value synchronously). */
export function andThen<T, R>(value: T | Promise<T>, then: (value: T) => R | Promise<R>): R | Promise<R> {
  return value instanceof Promise ? value.then(then) : then(value);
}

/** A primed value at once (PrimedLoader.peek), else the loader's promise. */
export function loadNow<K, V>(loader: PrimedLoader<K, V>, key: K): V | Promise<V> {
  const known = loader.peek(key);
  return known !== undefined ? known : loader.load(key);
}

/**
 * A key of two ids, such as a workspace's { organizationId, workspaceId }: a loader keeps and
 * groups such keys in nested maps (PairMap), without building a string of both per key — a
 * nested list under 250 workspaces (Q3) looked one up for every key and every row.
 */
export interface PairKeys<K> {
  first: (key: K) => string;
  second: (key: K) => string;
}

/** A map (and a DataLoader cache) of pair keys: a map of the first id to maps of the second. */
export class PairMap<K, V> {
  private readonly byFirst = new Map<string, Map<string, V>>();
  constructor(private readonly keys: PairKeys<K>) {}

  get(key: K): V | undefined {
    return this.byFirst.get(this.keys.first(key))?.get(this.keys.second(key));
  }

  set(key: K, value: V): this {
    const first = this.keys.first(key);
    let inner = this.byFirst.get(first);
    if (!inner) this.byFirst.set(first, (inner = new Map()));
    inner.set(this.keys.second(key), value);
    return this;
  }

  delete(key: K): boolean {
    return this.byFirst.get(this.keys.first(key))?.delete(this.keys.second(key)) ?? false;
  }

  clear(): void {
    this.byFirst.clear();
  }
}

/** How a loader tells its keys apart: the key itself, a function of it, or a pair of ids. */
type KeyScheme<K> = ((key: K) => unknown) | PairKeys<K>;

/** The part of a map a batch groups its rows with. */
interface KeyMap<K, V> {
  get(key: K): V | undefined;
  set(key: K, value: V): unknown;
}

/** A map of keys told apart by `scheme` (to group a batch's rows), as the loader's cache tells them apart (cacheMapOf). */
function mapOf<K, V>(scheme: KeyScheme<K> | undefined): KeyMap<K, V> {
  const { map, keyFn } = cacheMapOf<K, V>(scheme);
  return { get: (key) => map.get(keyFn(key)) as V | undefined, set: (key, value) => map.set(keyFn(key), value) };
}

/** A loader whose batch returns rows grouped under each key (an empty list when none). */
export function groupedLoader<K, V>(load: (keys: readonly K[]) => Promise<V[]>, keyOf: (row: V) => K, scheme?: KeyScheme<K>): PrimedLoader<K, V[]> {
  return new PrimedLoader<K, V[]>(async (keys) => {
    const rows = await load(keys);
    const groups = mapOf<K, V[]>(scheme);
    for (const row of rows) {
      const k = keyOf(row);
      const list = groups.get(k);
      if (list) list.push(row);
      else groups.set(k, [row]);
    }
    return keys.map((k) => groups.get(k) ?? []);
  }, scheme);
}

/**
 * A read without keys (something of the whole scope), made once per request on first use and
 * cleared with the other loaders. Its statement is sent at the call, not on the next tick as a
 * batch is: asked before anything else, a user's read opens the transaction with it.
 */
export function scopeLoader<V>(load: () => Promise<V>): { load(): Promise<V>; clearAll(): void } {
  let pending: Promise<V> | undefined;
  return {
    load: () => (pending ??= load()),
    clearAll: () => {
      pending = undefined;
    },
  };
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
      // Rows are grouped by page shape, then by owner: no string per key or row beyond its page shape's.
      const groupOfKey = keys.map(group);
      const groups = new Map<string, { first: OwnedPageKey<F>; owners: Set<string>; rows: Map<string, T[]> }>();
      keys.forEach((key, i) => {
        const g = groupOfKey[i]!;
        const existing = groups.get(g);
        if (existing) existing.owners.add(key.ownerId);
        else groups.set(g, { first: key, owners: new Set([key.ownerId]), rows: new Map() });
      });
      for (const { first, owners, rows } of groups.values()) {
        for (const row of await fetch([...owners], first.limit, first.after, first.filter)) {
          const owner = ownerOf(row);
          const list = rows.get(owner);
          if (list) list.push(row);
          else rows.set(owner, [row]);
        }
      }
      return keys.map((k, i) => groups.get(groupOfKey[i]!)!.rows.get(k.ownerId) ?? []);
    },
    { cacheKeyFn: cacheKey },
  );
}

/** Counts of many owners' lists, one statement per distinct filter. */
export function ownedCountLoader<F>(count: (ownerIds: string[], filter: F) => Promise<Array<{ owner: string; n: number }>>): DataLoader<{ ownerId: string; filter: F }, number, string> {
  const cacheKey = (k: { ownerId: string; filter: F }) => `${k.ownerId}:${JSON.stringify(k.filter)}`;
  return new DataLoader<{ ownerId: string; filter: F }, number, string>(
    async (keys) => {
      const byFilter = new Map<string, { filter: F; owners: Set<string> }>();
      for (const k of keys) {
        const f = JSON.stringify(k.filter);
        const existing = byFilter.get(f);
        if (existing) existing.owners.add(k.ownerId);
        else byFilter.set(f, { filter: k.filter, owners: new Set([k.ownerId]) });
      }
      const counts = new Map<string, number>();
      for (const [f, { filter, owners }] of byFilter) {
        for (const r of await count([...owners], filter)) counts.set(`${r.owner}:${f}`, Number(r.n));
      }
      return keys.map((k) => counts.get(cacheKey(k)) ?? 0);
    },
    { cacheKeyFn: cacheKey },
  );
}

/** What a request's loader group holds: loaders, each cleared after a mutation. */
type LoaderGroup = Record<string, { clearAll(): unknown }>;

/** The methods of a request's loader set itself (no loader may take these names). */
export interface LoaderSetMethods {
  /** Clears every loader built so far (after a mutation: the response reads what was written). */
  clearAll(): void;
}

/**
 * The class of a request's loader set, built group by group on first use: a request that reads
 * one organization builds its organization loaders, not the audit, invitation or API-key ones.
 * `factories[i]` builds group i from the set itself (so a group can use another's loaders). The
 * first set built learns every group's loader names and puts them on the prototype as getters;
 * a request's set is then one small object, and reading a loader a property access. Two groups
 * naming the same loader is refused there, at the first request, not silently overridden.
 */
export function loaderSetClass<T extends object>(): new (factories: ReadonlyArray<(set: T) => object>) => T & LoaderSetMethods {
  let layoutKnown = false;
  class LoaderSet implements LoaderSetMethods {
    private readonly built: Array<LoaderGroup | undefined>;
    constructor(private readonly factories: ReadonlyArray<(set: T) => object>) {
      this.built = new Array(factories.length);
      if (!layoutKnown) this.learnLayout();
    }

    group(index: number): LoaderGroup {
      return (this.built[index] ??= this.factories[index]!(this as unknown as T) as LoaderGroup);
    }

    clearAll(): void {
      for (const group of this.built) if (group) for (const loader of Object.values(group)) loader.clearAll();
    }

    private learnLayout(): void {
      const proto = LoaderSet.prototype;
      const owner = new Map<string, number>();
      try {
        // Getters are installed group by group as each is built, so a factory may read the loaders of groups before it.
        this.factories.forEach((_, index) => {
          for (const name of Object.keys(this.group(index))) {
            if (owner.has(name) || name in this) throw new Error(`Loader "${name}" is defined twice (groups ${owner.get(name) ?? 'LoaderSet'} and ${index})`);
            owner.set(name, index);
            Object.defineProperty(proto, name, {
              configurable: true,
              get(this: LoaderSet) {
                return this.group(index)[name];
              },
            });
          }
        });
      } catch (error) {
        // A factory that failed (or a name defined twice) leaves no getter behind: the next request learns again.
        for (const name of owner.keys()) delete (proto as unknown as Record<string, unknown>)[name];
        throw error;
      }
      layoutKnown = true;
    }
  }
  return LoaderSet as unknown as new (factories: ReadonlyArray<(set: T) => object>) => T & LoaderSetMethods;
}

/**
 * `column` among a batch's keys (organizations, ids, slugs…) as parameter $n: one key as a scalar,
 * several as a set the planner may hash (`many: 'set'`) or as an index condition (`many: 'index'`).
 *
 * - With a one-element array PostgreSQL's plan cache keeps finding its custom plan cheaper than
 *   the generic one and plans `= ANY($n)` again on every call (with row-level security, most of a
 *   small query's cost); `= $n` gets a generic plan, planned once per connection. A
 *   one-organization page of members: 1.33 → 0.93 ms of PostgreSQL's CPU; an organization by
 *   slug, with the transaction around it: 0.40 → 0.33 ms.
 * - With many keys, the generic plan of `= ANY($n)` probes an index once per key, or tests every
 *   key against every row; `IN (SELECT unnest($n))` lets it hash the keys, or probe the index
 *   through a join where that is cheaper. 200 organizations by id under row-level security:
 *   1.4 → 0.3 ms.
 * - `many: 'index'` keeps `= ANY($n)`, which the planner can put in an index condition beside the
 *   policy's own `= ANY(scope)`: for a table whose index leads with the organization, joined as a
 *   set the index was scanned for every organization the policy admits (Q3's environments: 3 000
 *   rows of 200 organizations read to keep the 750 of 50; 2.2 → 1.7 ms).
 */
export function oneOf(
  column: string,
  n: number,
  keys: readonly string[],
  type: 'uuid' | 'text' = 'uuid',
  many: 'set' | 'index' = 'set',
): { sql: string; param: string | readonly string[] } {
  if (keys.length === 1) return { sql: `${column} = $${n}::${type}`, param: keys[0]! };
  return { sql: many === 'index' ? `${column} = ANY($${n}::${type}[])` : `${column} IN (SELECT unnest($${n}::${type}[]))`, param: keys };
}

/**
 * A batch's keys as rows of one column, `alias (column)`, as parameter $n, to join laterally (a
 * page per key): one key as a scalar, for its generic plan (see oneOf), several as `unnest($n)`.
 */
export function keyRows(alias: string, column: string, n: number, keys: readonly string[], type: 'uuid' | 'text' = 'uuid'): { sql: string; param: string | readonly string[] } {
  return keys.length === 1
    ? { sql: `(SELECT $${n}::${type} AS ${column}) ${alias}`, param: keys[0]! }
    : { sql: `unnest($${n}::${type}[]) AS ${alias} (${column})`, param: keys };
}
