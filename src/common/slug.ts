import { BadUserInputError, ConflictError, isUniqueViolation, uniqueOrConflict } from './errors';
import type { SqlQuery } from '../database/tenant-transaction';

export const SLUG_PATTERN = /^[a-z0-9]+(-[a-z0-9]+)*$/;
export const SLUG_MAX_LENGTH = 100;

/** Organization slugs nobody may take (`default` belongs to the seeded organization). */
export const RESERVED_ORGANIZATION_SLUGS: ReadonlySet<string> = new Set([
  'admin', 'administrator', 'api', 'app', 'assets', 'auth', 'billing', 'dashboard', 'default', 'docs', 'graphql',
  'health', 'healthz', 'help', 'login', 'logout', 'me', 'metrics', 'new', 'null', 'readyz', 'root', 'settings',
  'signin', 'signup', 'static', 'status', 'support', 'system', 'undefined', 'www',
]);

/** Lowercase, accents stripped, non-alphanumerics to `-`; `fallback` when nothing is left. */
export function slugify(name: string, fallback: string): string {
  const base = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    // Room for a `-NNN` suffix within the maximum length.
    .slice(0, SLUG_MAX_LENGTH - 6)
    .replace(/-+$/g, '');
  return base || fallback;
}

/** An explicit slug is never normalised: it matches the pattern or is refused. */
export function assertExplicitSlug(slug: string, field = 'slug', reserved?: ReadonlySet<string>): void {
  if (slug.length < 1 || slug.length > SLUG_MAX_LENGTH || !SLUG_PATTERN.test(slug)) {
    throw new BadUserInputError(field, `Slug must be 1–${SLUG_MAX_LENGTH} characters of lowercase letters, digits and single hyphens (e.g. "acme-inc")`);
  }
  if (reserved?.has(slug)) throw new BadUserInputError(field, `The slug '${slug}' is reserved`);
}

/** How many candidates (base, base-2, …) are asked about at once. */
export const SLUG_CANDIDATE_BATCH = 50;

/** The candidates of a batch: base, base-2 … base-50, then base-51 … base-100, and so on. */
export function slugCandidates(base: string, batch: number): string[] {
  return Array.from({ length: SLUG_CANDIDATE_BATCH }, (_, i) => {
    const n = batch * SLUG_CANDIDATE_BATCH + i + 1;
    return n === 1 ? base : `${base}-${n}`;
  });
}

export interface SlugAllocation<T> {
  query: SqlQuery;
  savepoint: <R>(fn: () => Promise<R>) => Promise<R>;
  /** Distinguishes the namespace: a lock is taken per (scope, base). */
  scope: string;
  explicit: string | null | undefined;
  name: string;
  fallback: string;
  reserved?: ReadonlySet<string>;
  /** Which of these candidate slugs are taken (asks only about them). */
  taken: (candidates: string[]) => Promise<string[]>;
  /** Inserts with the chosen slug; a unique violation on `constraint` means the slug was taken meanwhile. */
  insert: (slug: string) => Promise<T>;
  constraint: string;
  conflictMessage: (slug: string) => string;
}

/**
 * Chooses a slug and inserts the row. An explicit slug that is taken is a CONFLICT. A derived
 * one gets the next free suffix: concurrent creates of the same name are serialised by an
 * advisory lock held until the transaction ends, and a race with an explicit slug is retried.
 */
export async function insertWithSlug<T>(a: SlugAllocation<T>): Promise<{ row: T; slug: string }> {
  if (a.explicit !== undefined && a.explicit !== null) {
    const slug = a.explicit;
    const row = await uniqueOrConflict(a.savepoint, () => a.insert(slug), { constraint: a.constraint, message: a.conflictMessage(slug), field: 'slug' });
    return { row, slug };
  }
  const base = slugify(a.name, a.fallback);
  await a.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`${a.scope}:${base}`]);
  let collisions = 0;
  for (let batch = 0; batch < 100 && collisions < 20; batch += 1) {
    const candidates = slugCandidates(base, batch);
    const taken = new Set(await a.taken(candidates));
    for (const slug of candidates) {
      if (taken.has(slug) || a.reserved?.has(slug)) continue;
      try {
        return { row: await a.savepoint(() => a.insert(slug)), slug };
      } catch (error) {
        // Taken meanwhile by an explicit slug (explicit slugs do not take the lock): try the next one.
        if (!isUniqueViolation(error, a.constraint)) throw error;
        if (++collisions >= 20) break;
      }
    }
  }
  throw new ConflictError(a.conflictMessage(base), { field: 'slug' });
}
