import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { RateLimitIdentity } from '../auth/principal';
import { setBounded } from '../common/bounded-map';
import type { Database } from '../database/database';
import type { NamedScope } from './attribution';

/** The outcome of counting one request: the tightest bucket it was counted in. */
export interface RateVerdict {
  refused: boolean;
  /** Requests per minute allowed in that bucket (null: unlimited, e.g. ENTERPRISE). */
  limit: number | null;
  /** Requests left this minute (0 once refused; null when unlimited). */
  remaining: number | null;
  /** Seconds until the minute of the counter ends. */
  retryAfterSeconds: number;
  /** The organizations the request was counted in (empty: outside any, RATE_LIMIT_USER_PER_MINUTE). */
  organizationIds: string[];
}

export interface HitRow {
  organization_id: string | null;
  /** The bucket counted in (`user:<sub>`, `apikey:<id>`, … and `@<organization>` inside one). */
  bucket: string;
  /** The minute counted in (its start, epoch milliseconds by the database's clock). */
  window_start: number | string;
  /** Requests counted or reserved in the bucket this minute, by every instance. */
  hits: number;
  max_hits: number | null;
  /** Seconds until the minute ends, rounded up. */
  retry_after: number;
  /** Milliseconds until the minute ends, rounded down, when the counter ran. */
  ms_left: number;
}

const HIT = `SELECT organization_id, bucket, window_start, hits, max_hits, retry_after, ms_left
  FROM app_rate_limit_hit($1, $2, $3, $4::text[], $5::text[], $6, $7, $8, $9)`;

/** At most this many requests of a bucket are reserved by one call. */
export const MAX_LEASE = 50;
/**
 * A lease reserves an eighth of what is left of a limit (at most MAX_LEASE): far from the limit an
 * instance counts in blocks, and near it one request at a time — the last 8 requests of a limit
 * are counted in the database one by one.
 */
const LEASE_SHARE = 8;
/** How long what a request names is known to fall in the same buckets before the database attributes it again. */
export const ATTRIBUTION_MS = 30_000;
/**
 * Reserved requests are served until this long before the database's minute may end (the end is
 * known to the millisecond, counted from before the statement was sent: the margin only covers
 * the two clocks' granularity). In that last moment each request is counted on its own.
 */
export const END_MARGIN_MS = 20;
/** Bounds of the remembered attributions and leases (the oldest go first; a dropped lease's requests stay counted). */
const MAX_REMEMBERED = 10_000;

/** Requests of one bucket this instance reserved in the database and has not served yet. */
interface Lease {
  /** The minute they were reserved in (its start by the database's clock, epoch ms). */
  window: number;
  limit: number | null;
  /** The bucket's hits (counted and reserved by every instance) as the database last answered. */
  hits: number;
  /** Reserved and not yet served. */
  left: number;
  /**
   * Until when (this process's monotonic clock) they are served: the time left in the minute,
   * counted from before the statement was sent, less END_MARGIN_MS — however late the answer came.
   */
  servableUntil: number;
  /** When the minute has ended at the latest (Retry-After, X-RateLimit-Reset). */
  endsBy: number;
}

interface Attribution {
  buckets: Array<{ key: string; organizationId: string | null }>;
  until: number;
}

/**
 * Per-principal, per-minute counters shared by every instance on the database (SPEC §8), in
 * `rate_limit_counters` (migrations 1765600000000, 1766000000000).
 *
 * `app_rate_limit_hit` attributes a request (which organizations it names that the principal
 * belongs to), reads the plans' limits and counts it — or reserves several requests at once (a
 * lease): `hits = hits + n`, atomic under the counter row's lock, so every instance sees the
 * reservation at once and no instance can ever serve more than the limit between them. What a
 * request names is remembered for ATTRIBUTION_MS; while the leases of all its buckets hold
 * requests, the request takes one from each without a statement. A lease is an eighth of what
 * is left of the limit (at most MAX_LEASE): near the limit requests are counted one by one, so a
 * single instance serves exactly the limit per minute. Several instances may refuse a little
 * early (another instance holds reserved requests it has not served), never late.
 *
 * The statement goes outside the request's transaction, never rolls back with it nor holds its
 * counter row for the request's length: on PostgreSQL on the request's own connection just ahead
 * of its BEGIN, in the same socket write (TenantTransaction.ahead); where that is not possible
 * (the embedded database, a transaction already open) on a connection of its own
 * (Database.sideStatement).
 *
 * Fails open: when counting fails (its counter row held past 1 s — the function's lock_timeout —,
 * the side connection's 1 s budget, a database hiccup), the request is served and a warning
 * logged — the counters protect the service, they must not take it down.
 */
export class RateLimiter {
  private readonly attributions = new Map<string, Attribution>();
  private readonly leases = new Map<string, Lease>();

  constructor(
    private readonly db: Database,
    private readonly userLimitPerMinute: number,
    private readonly logger: Logger,
    /** A monotonic clock in milliseconds (tests move it). */
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Counts one request and says whether it is over a limit; null when counting failed (served).
   * `ahead` sends the statement ahead of the request's transaction when it can (null when not).
   * A statement, when one is needed, is handed over synchronously, before this returns: on the
   * embedded database it takes its place in the connection's queue ahead of the request's
   * transaction.
   */
  hit(
    identity: RateLimitIdentity,
    scopes: readonly NamedScope[],
    requestId?: string,
    ahead?: (sql: string, params: unknown[]) => Promise<HitRow[]> | null,
  ): Promise<RateVerdict | null> {
    const now = this.now();
    const signature = signatureOf(identity, scopes);
    const attribution = this.attributions.get(signature);
    const leases = attribution?.buckets.map((b) => this.leases.get(b.key));
    const stocked = leases !== undefined && leases.every((l) => l !== undefined && l.left > 0 && l.servableUntil > now);
    if (stocked && attribution!.until > now) return Promise.resolve(this.serve(attribution!, leases as Lease[], now));
    // Counted in the database: one request when the leases still hold some (only the attribution is
    // due again), else a new lease as large as the smallest bucket allows (1 for a request never seen).
    const count = stocked || !leases ? 1 : Math.min(...leases.map((l) => leaseSize(l, now)));
    const params = [
      identity.key,
      identity.subject,
      identity.organizationId,
      scopes.map((s) => s.kind),
      scopes.map((s) => s.id),
      this.userLimitPerMinute,
      identity.apiKey?.via === 'secret' ? Buffer.from(identity.apiKey.hash, 'hex') : null,
      identity.apiKey?.via === 'token' ? identity.apiKey.keyId : null,
      count,
    ];
    const rows = ahead?.(HIT, params) ?? this.db.sideStatement<HitRow>(HIT, params);
    return rows.then(
      (answer) => this.settle(signature, answer, count, now),
      (error: unknown) => {
        this.logger.warn({ err: error, requestId }, 'rate limit: counting failed, request served (fail open)');
        return null;
      },
    );
  }

  /**
   * Takes the database's answer to a statement sent at `sentAt`: each bucket's lease of that
   * minute grows by what was reserved within its limit; the request takes one from each bucket,
   * or, when a bucket has none, is refused — and still counts in every bucket, as it did in the
   * database.
   */
  private settle(signature: string, rows: HitRow[], count: number, sentAt: number): RateVerdict | null {
    if (rows.length === 0) return null;
    const now = this.now();
    const attribution: Attribution = { buckets: rows.map((r) => ({ key: r.bucket, organizationId: r.organization_id })), until: now + ATTRIBUTION_MS };
    remember(this.attributions, signature, attribution);
    const leases = rows.map((row) => {
      const hits = Number(row.hits);
      const limit = row.max_hits === null ? null : Number(row.max_hits);
      const msLeft = Number(row.ms_left);
      // Of the `count` requests just counted, those within the limit.
      const granted = limit === null ? count : Math.max(0, Math.min(count, limit - (hits - count)));
      const answered: Lease = { window: Number(row.window_start), limit, hits, left: granted, servableUntil: sentAt + msLeft - END_MARGIN_MS, endsBy: now + msLeft + 1 };
      const held = this.leases.get(row.bucket);
      if (!held || held.window < answered.window) {
        remember(this.leases, row.bucket, answered);
        return answered;
      }
      if (held.window === answered.window) {
        held.hits = Math.max(held.hits, hits);
        held.left += granted;
        held.limit = limit;
        held.servableUntil = Math.max(held.servableUntil, answered.servableUntil);
        held.endsBy = Math.min(held.endsBy, answered.endsBy);
        return held;
      }
      // An answer of a past minute, come after one of the next: what it reserved is of that minute, for this request only.
      return answered;
    });
    const over = leases.map((l, i) => (l.left < 1 ? i : -1)).filter((i) => i >= 0);
    if (over.length === 0) return this.serve(attribution, leases, now);
    for (const lease of leases) if (lease.left >= 1) lease.left -= 1;
    return {
      refused: true,
      limit: over.map((i) => leases[i]!.limit).reduce((a, b) => ((b ?? Infinity) < (a ?? Infinity) ? b : a)),
      remaining: 0,
      retryAfterSeconds: Math.max(...over.map((i) => Number(rows[i]!.retry_after))),
      organizationIds: organizationsOf(attribution),
    };
  }

  /** Serves the request from its buckets' leases: one reserved request from each. */
  private serve(attribution: Attribution, leases: Lease[], now: number): RateVerdict {
    for (const lease of leases) lease.left -= 1;
    // The bucket with the fewest requests left this minute (what this instance reserved and has not served is not spent).
    const tightest = leases.reduce((a, b) => (remainingOf(b) < remainingOf(a) ? b : a));
    const remaining = remainingOf(tightest);
    return {
      refused: false,
      limit: tightest.limit,
      remaining: Number.isFinite(remaining) ? remaining : null,
      retryAfterSeconds: secondsUntil(tightest.endsBy, now),
      organizationIds: organizationsOf(attribution),
    };
  }
}

/**
 * What a request names, as one key: its principal's bucket and its scopes, unambiguous whatever
 * characters a slug holds, hashed to a fixed length.
 */
function signatureOf(identity: RateLimitIdentity, scopes: readonly NamedScope[]): string {
  return createHash('sha256')
    .update(JSON.stringify([identity.key, scopes.map((s) => [s.kind, s.id])]))
    .digest('base64');
}

/**
 * How many requests the next call reserves in a bucket: an eighth of what is left of its limit,
 * 1 to MAX_LEASE; one in the last END_MARGIN_MS of a minute (nothing more could be served there).
 */
function leaseSize(lease: Lease | undefined, now: number): number {
  if (!lease) return 1;
  const newMinute = now >= lease.endsBy;
  if (!newMinute && now >= lease.servableUntil) return 1;
  if (lease.limit === null) return MAX_LEASE;
  const spent = newMinute ? 0 : lease.hits - lease.left;
  return Math.max(1, Math.min(MAX_LEASE, Math.floor((lease.limit - spent) / LEASE_SHARE)));
}

const remainingOf = (lease: Lease): number => (lease.limit === null ? Number.POSITIVE_INFINITY : Math.max(0, lease.limit - (lease.hits - lease.left)));

const secondsUntil = (at: number, now: number): number => Math.max(1, Math.ceil((at - now) / 1000));

const organizationsOf = (attribution: Attribution): string[] => attribution.buckets.map((b) => b.organizationId).filter((id): id is string => id !== null);

/** Sets a key as the newest entry (an entry set again moves to the end), within MAX_REMEMBERED. */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  setBounded(map, key, value, MAX_REMEMBERED);
}
