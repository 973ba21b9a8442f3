import type { Logger } from 'pino';
import { type EdgeMiddleware, pathOf } from './edge';
import type { Metrics } from './metrics';

/** What the layers behind the HTTP edge add to the request's log line. */
export interface RequestLogDetails {
  /** Why the request was refused before GraphQL ran (`expired`, `bad signature`, `payload too large`, …). */
  reason?: string;
  operation?: string | null;
  principal?: string | null;
  errors?: string[];
  /** SQL statements the request cost. */
  queries?: number;
}

/** The details of the response being built; the middleware below creates them. */
export function logDetails(res: { locals: Record<string, unknown> }): RequestLogDetails {
  const locals = res.locals as { requestLog?: RequestLogDetails };
  locals.requestLog ??= {};
  return locals.requestLog;
}

/**
 * Logs every request exactly once, when its response is finished (or the client went away):
 * method, path (never the query string, which may hold a GET query's variables), status,
 * duration, request id and whatever the GraphQL layer or the refusal added. The same moment
 * feeds the request metrics, so that a request is measured once, from one set of details.
 */
export function requestLogger(logger: Logger, metrics?: Metrics): EdgeMiddleware {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    const details = logDetails(res);
    // Read now: a router mounted on a path rewrites req.url while it handles the request.
    const path = pathOf(req.url);
    let logged = false;
    const log = () => {
      if (logged) return;
      logged = true;
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      metrics?.observe({ path, method: req.method!, status: res.statusCode, durationSeconds: durationMs / 1000, operation: details.operation, errors: details.errors });
      // The line is built only when it is written (LOG_LEVEL above info).
      if (!logger.isLevelEnabled('info')) return;
      logger.info(
        {
          requestId: res.locals.requestId as string | undefined,
          method: req.method,
          path,
          status: res.statusCode,
          durationMs,
          ...(res.writableFinished ? {} : { aborted: true }),
          ...details,
        },
        'request',
      );
    };
    res.on('finish', log);
    res.on('close', log);
    next();
  };
}

/** Short reasons for jose's error codes (InvalidTokenError carries them); other reasons are the verifier's own words. */
const TOKEN_REASONS: Record<string, string> = {
  ERR_JWT_EXPIRED: 'expired',
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'bad signature',
  ERR_JWT_CLAIM_VALIDATION_FAILED: 'claim check failed',
  ERR_JWS_INVALID: 'malformed token',
  ERR_JWT_INVALID: 'malformed token',
  ERR_JOSE_NOT_SUPPORTED: 'unsupported algorithm',
  ERR_JOSE_ALG_NOT_ALLOWED: 'algorithm not allowed',
  ERR_JWKS_NO_MATCHING_KEY: 'unknown key',
  ERR_JWKS_MULTIPLE_MATCHING_KEYS: 'ambiguous key',
  ERR_JWKS_TIMEOUT: 'issuer keys unavailable',
  ERR_JWKS_INVALID: 'issuer keys unavailable',
  ERR_JOSE_GENERIC: 'invalid token',
};

/** The log reason for a refused token: never the token, only what was wrong with it. */
export function tokenRefusalReason(code: string): string {
  return TOKEN_REASONS[code] ?? (/^ERR_/.test(code) ? 'invalid token' : code);
}

const GRAPHQL_LOG = Symbol('requestLog');

/**
 * Hands the request's log details to the GraphQL plugin through the context object. A symbol
 * property: Apollo gives plugins a shallow copy of the context, which keeps own enumerable symbols.
 */
export function withRequestLog<T extends object>(context: T, details: RequestLogDetails): T {
  Object.defineProperty(context, GRAPHQL_LOG, { value: details, enumerable: true });
  return context;
}

export function requestLogOf(context: object): RequestLogDetails | undefined {
  return (context as { [GRAPHQL_LOG]?: RequestLogDetails })[GRAPHQL_LOG];
}
