import { Router } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PoolStats } from '../database/database';

/** What the request log knows of a finished request (src/http/request-log.ts). */
export interface RequestObservation {
  path: string;
  method: string;
  status: number;
  durationSeconds: number;
  /** The resolved operation's name; null: anonymous; undefined: refused before an operation was resolved. */
  operation?: string | null;
  /** Error codes of the response; undefined when neither GraphQL nor a refusal named any. */
  errors?: string[];
}

export type Outcome = 'ok' | 'error' | 'refused' | 'unavailable';

/** At most this many distinct operation names become label values; the rest count as `other`. */
export const MAX_OPERATION_LABELS = 100;
/** GraphQL names ([_A-Za-z][_0-9A-Za-z]*), at most 64 characters: anything else counts as `other`. */
const SAFE_NAME = /^[_A-Za-z][_0-9A-Za-z]{0,63}$/;
const SAFE_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;
/** Codes that mean the request was turned away rather than run and failed. */
const REFUSAL_CODES = new Set(['UNAUTHENTICATED', 'RATE_LIMITED']);

/** Seconds: from a cached lookup to a slow mutation on a loaded database. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

let processRegistry: Registry | undefined;
/**
 * Process, heap, GC and event-loop-lag metrics (prom-client's defaults) are the process's, not a
 * server's: collected once, into a registry every server's /metrics merges with its own.
 */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** How a finished request ended, from its HTTP status and error codes. */
export function outcomeOf(status: number, errors: readonly string[] = []): Outcome {
  if (status === 503) return 'unavailable';
  if ((status >= 400 && status < 500) || (errors.length > 0 && errors.every((code) => REFUSAL_CODES.has(code)))) return 'refused';
  if (status >= 500 || errors.length > 0) return 'error';
  return 'ok';
}

/**
 * The service's Prometheus metrics. GraphQL requests are counted once each, when the request
 * log writes their line (no per-field hook): by operation and outcome, with their latency, and
 * their errors by code. Pool gauges are read when /metrics is scraped.
 */
export class Metrics {
  readonly registry: Registry;
  private readonly requests: Counter<'operation' | 'outcome'>;
  private readonly duration: Histogram<'operation' | 'outcome'>;
  private readonly errors: Counter<'code'>;
  /** Operation names already given a label of their own (bounded by maxOperations). */
  private readonly operations = new Set<string>();
  /** The counter and histogram children per operation and outcome, so a request costs no label hashing. */
  private readonly series = new Map<string, { count: { inc(): void }; duration: { observe(value: number): void } }>();

  constructor(
    pool: () => PoolStats,
    private readonly maxOperations = MAX_OPERATION_LABELS,
  ) {
    const own = new Registry();
    this.requests = new Counter({
      name: 'graphql_requests_total',
      help: 'GraphQL requests by operation name and outcome (ok, error, refused, unavailable)',
      labelNames: ['operation', 'outcome'],
      registers: [own],
    });
    this.duration = new Histogram({
      name: 'graphql_request_duration_seconds',
      help: 'Time from the request arriving to its response being sent, by operation name and outcome',
      labelNames: ['operation', 'outcome'],
      buckets: DURATION_BUCKETS,
      registers: [own],
    });
    this.errors = new Counter({
      name: 'graphql_errors_total',
      help: 'Errors in GraphQL responses (and refusals before GraphQL ran) by code',
      labelNames: ['code'],
      registers: [own],
    });
    const gauge = (name: string, help: string, read: (stats: PoolStats) => number) =>
      new Gauge({
        name,
        help,
        registers: [own],
        collect() {
          this.set(read(pool()));
        },
      });
    gauge('db_pool_connections', 'Open database connections of the request pool (the embedded database has one)', (s) => s.total);
    gauge('db_pool_connections_idle', 'Open database connections not in use', (s) => s.idle);
    gauge('db_pool_waiting', 'Units of work waiting for a database connection', (s) => s.waiting);
    gauge('db_pool_connections_max', 'The most connections the request pool opens', (s) => s.max);
    this.registry = Registry.merge([processMetrics(), own]);
  }

  /** Label value for an operation name: bounded in shape and number, since clients choose names. */
  operationLabel(name: string | null | undefined): string {
    if (name === undefined) return 'unknown';
    if (name === null) return 'anonymous';
    if (!SAFE_NAME.test(name)) return 'other';
    if (this.operations.has(name)) return name;
    if (this.operations.size >= this.maxOperations) return 'other';
    this.operations.add(name);
    return name;
  }

  /** Counts a finished request if it was a GraphQL request (one that GraphQL answered or that was refused on its way there). */
  observe(request: RequestObservation): void {
    if (request.path !== '/graphql' || request.method === 'OPTIONS') return;
    // Neither GraphQL nor a refusal touched it (e.g. the explorer page): not an operation.
    if (request.errors === undefined && request.status < 400) return;
    const operation = this.operationLabel(request.operation);
    const outcome = outcomeOf(request.status, request.errors);
    const key = `${outcome} ${operation}`;
    let series = this.series.get(key);
    if (!series) {
      series = { count: this.requests.labels(operation, outcome), duration: this.duration.labels(operation, outcome) };
      this.series.set(key, series);
    }
    series.count.inc();
    series.duration.observe(request.durationSeconds);
    for (const code of request.errors ?? []) this.errors.inc({ code: SAFE_CODE.test(code) ? code : 'other' });
  }

  /** GET /metrics in Prometheus' text format. Public like /healthz (SPEC §7): no bearer, no rate limit. */
  routes(): Router {
    const router = Router();
    router.get('/metrics', async (_req, res, next) => {
      try {
        const body = await this.registry.metrics();
        res.setHeader('content-type', this.registry.contentType);
        res.end(body);
      } catch (error) {
        next(error);
      }
    });
    return router;
  }
}
