import type { Logger } from 'pino';
import type { RateLimitIdentity } from '../auth/principal';
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

interface HitRow {
  organization_id: string | null;
  hits: number;
  max_hits: number | null;
  retry_after: number;
}

const HIT = `SELECT organization_id, hits, max_hits, retry_after FROM app_rate_limit_hit($1, $2, $3, $4::text[], $5::text[], $6, $7, $8)`;

/**
 * Per-principal, per-minute counters shared by every instance on the database (SPEC §8). One
 * statement per request (`app_rate_limit_hit`, migration 1765600000000) attributes the request,
 * reads the plan's limit and counts it, outside the request's transaction: it never rolls back
 * with it nor holds its counter row for the request's length. On PostgreSQL it goes on the
 * request's own connection just ahead of its BEGIN, in the same socket write
 * (TenantTransaction.ahead); where that is not possible (the embedded database, a transaction
 * already open) on a connection of its own (Database.sideStatement).
 *
 * Fails open: when counting fails (its counter row held past 1 s — the function's lock_timeout —,
 * the side connection's 1 s budget, a database hiccup), the request is served and a warning
 * logged — the counters protect the service, they must not take it down.
 */
export class RateLimiter {
  constructor(
    private readonly db: Database,
    private readonly userLimitPerMinute: number,
    private readonly logger: Logger,
  ) {}

  /**
   * Counts one request and says whether it is over a limit; null when counting failed (served).
   * `ahead` sends the statement ahead of the request's transaction when it can (null when not).
   * The statement is handed over synchronously, before this returns: on the embedded database it
   * takes its place in the connection's queue ahead of the request's transaction.
   */
  hit(
    identity: RateLimitIdentity,
    scopes: readonly NamedScope[],
    requestId?: string,
    ahead?: (sql: string, params: unknown[]) => Promise<HitRow[]> | null,
  ): Promise<RateVerdict | null> {
    const params = [
      identity.key,
      identity.subject,
      identity.organizationId,
      scopes.map((s) => s.kind),
      scopes.map((s) => s.id),
      this.userLimitPerMinute,
      identity.apiKey?.via === 'secret' ? Buffer.from(identity.apiKey.hash, 'hex') : null,
      identity.apiKey?.via === 'token' ? identity.apiKey.keyId : null,
    ];
    const rows = ahead?.(HIT, params) ?? this.db.sideStatement<HitRow>(HIT, params);
    return rows.then(verdictOf, (error: unknown) => {
      this.logger.warn({ err: error, requestId }, 'rate limit: counting failed, request served (fail open)');
      return null;
    });
  }
}

/** Refused when any bucket is over its limit; otherwise the bucket with the fewest requests left. */
function verdictOf(rows: HitRow[]): RateVerdict | null {
  if (rows.length === 0) return null;
  const buckets = rows.map((r) => {
    const hits = Number(r.hits);
    const limit = r.max_hits === null ? null : Number(r.max_hits);
    return { hits, limit, remaining: limit === null ? null : Math.max(0, limit - hits), over: limit !== null && hits > limit, retry: Number(r.retry_after) };
  });
  const over = buckets.filter((b) => b.over);
  const tightest = (over.length > 0 ? over : buckets).reduce((a, b) => (rank(b) < rank(a) ? b : a));
  return {
    refused: over.length > 0,
    limit: tightest.limit,
    remaining: tightest.remaining,
    retryAfterSeconds: over.length > 0 ? Math.max(...over.map((b) => b.retry)) : tightest.retry,
    organizationIds: rows.map((r) => r.organization_id).filter((id): id is string => id !== null),
  };
}

const rank = (b: { remaining: number | null }): number => b.remaining ?? Number.POSITIVE_INFINITY;
