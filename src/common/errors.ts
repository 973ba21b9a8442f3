import { GraphQLError } from 'graphql';

/** Every code a client can see (SPEC §6), in order of precedence when several apply. */
export const ERROR_CODES = [
  'UNAUTHENTICATED',
  'NOT_FOUND',
  'FORBIDDEN',
  'BAD_USER_INPUT',
  'MFA_REQUIRED',
  'SESSION_EXPIRED',
  'IP_NOT_ALLOWED',
  'ORGANIZATION_INACTIVE',
  'FEATURE_DISABLED',
  'QUOTA_EXCEEDED',
  'PRECONDITION_FAILED',
  'CONFLICT',
  'RATE_LIMITED',
  'QUERY_TOO_COMPLEX',
  'INTERNAL_SERVER_ERROR',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * Base of the service's own errors. Services throw these (never a bare Error for a user-facing
 * condition); the error formatter lets them through and masks everything else.
 */
export abstract class AppError extends GraphQLError {
  abstract readonly code: ErrorCode;
  protected constructor(message: string, code: ErrorCode, extensions: Record<string, unknown> = {}, httpStatus?: number) {
    super(message, { extensions: { code, ...extensions, ...(httpStatus ? { http: { status: httpStatus } } : {}) } });
  }
}

export class UnauthenticatedError extends AppError {
  readonly code = 'UNAUTHENTICATED' as const;
  constructor(message = 'Authentication required', httpStatus?: number) {
    super(message, 'UNAUTHENTICATED', {}, httpStatus);
  }
}

export class ForbiddenError extends AppError {
  readonly code = 'FORBIDDEN' as const;
  constructor(message = 'You do not have permission to perform this action') {
    super(message, 'FORBIDDEN');
  }
}

/** Names only the kind of thing, never the id or slug that was asked for (SPEC §3). */
export class NotFoundError extends AppError {
  readonly code = 'NOT_FOUND' as const;
  constructor(kind: string) {
    super(`${kind} not found`, 'NOT_FOUND');
  }
}

/** The value, or NOT_FOUND naming only its kind. */
export function found<T>(value: T | null | undefined, kind: string): T {
  if (value === null || value === undefined) throw new NotFoundError(kind);
  return value;
}

export class BadUserInputError extends AppError {
  readonly code = 'BAD_USER_INPUT' as const;
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message, 'BAD_USER_INPUT', { field });
  }
}

export class ConflictError extends AppError {
  readonly code = 'CONFLICT' as const;
  constructor(message: string, extensions: Record<string, unknown> = {}) {
    super(message, 'CONFLICT', extensions);
  }
}

export class PreconditionFailedError extends AppError {
  readonly code = 'PRECONDITION_FAILED' as const;
  constructor(
    readonly reason: string,
    message: string,
    extensions: Record<string, unknown> = {},
  ) {
    super(message, 'PRECONDITION_FAILED', { reason, ...extensions });
  }
}

export class QuotaExceededError extends AppError {
  readonly code = 'QUOTA_EXCEEDED' as const;
  constructor(resource: string, used: number, limit: number, extensions: Record<string, unknown> = {}) {
    super(`Quota exceeded for ${resource}: ${used} of ${limit} used`, 'QUOTA_EXCEEDED', { resource, used, limit, ...extensions });
  }
}

export class FeatureDisabledError extends AppError {
  readonly code = 'FEATURE_DISABLED' as const;
  constructor(feature: string) {
    super(`The feature '${feature}' is not enabled for this organization`, 'FEATURE_DISABLED', { feature });
  }
}

/** The organization requires multi-factor authentication and the token is single-factor (SPEC §2). */
export class MfaRequiredError extends AppError {
  readonly code = 'MFA_REQUIRED' as const;
  constructor(message = 'This organization requires multi-factor authentication') {
    super(message, 'MFA_REQUIRED');
  }
}

/** The token authenticated longer ago than the organization's sessionTimeoutMinutes (SPEC §2). */
export class SessionExpiredError extends AppError {
  readonly code = 'SESSION_EXPIRED' as const;
  constructor(timeoutMinutes: number) {
    super(`This organization requires signing in again every ${timeoutMinutes} minutes`, 'SESSION_EXPIRED', { sessionTimeoutMinutes: timeoutMinutes });
  }
}

/** The client address is outside the organization's IP allowlist (SPEC §2); the address is not echoed. */
export class IpNotAllowedError extends AppError {
  readonly code = 'IP_NOT_ALLOWED' as const;
  constructor() {
    super("Your address is not in this organization's IP allowlist", 'IP_NOT_ALLOWED');
  }
}

export class OrganizationInactiveError extends AppError {
  readonly code = 'ORGANIZATION_INACTIVE' as const;
  constructor(status: string) {
    super(`The organization is ${status.toLowerCase()} and cannot be changed`, 'ORGANIZATION_INACTIVE', { status });
  }
}

/** The query may return more objects than MAX_QUERY_COST allows (SPEC §8): refused before it runs, HTTP 400. */
export class QueryTooComplexError extends AppError {
  readonly code = 'QUERY_TOO_COMPLEX' as const;
  constructor(cost: number, limit: number, message = `Query cost ${cost} exceeds the limit of ${limit}: ask for fewer items (smaller \`first\`) or fewer nested lists`) {
    super(message, 'QUERY_TOO_COMPLEX', { cost, limit }, 400);
  }
}

/** Over the principal's requests per minute (SPEC §8): the whole request is refused, HTTP 429 with Retry-After. */
export class RateLimitedError extends AppError {
  readonly code = 'RATE_LIMITED' as const;
  constructor(
    readonly retryAfterSeconds: number,
    limit: number,
  ) {
    super(`Rate limit of ${limit} requests per minute exceeded; retry in ${retryAfterSeconds} s`, 'RATE_LIMITED', { retryAfterSeconds, limit }, 429);
  }
}

export class ServiceUnavailableError extends AppError {
  readonly code = 'INTERNAL_SERVER_ERROR' as const;
  constructor() {
    super('The database is unavailable; try again shortly', 'INTERNAL_SERVER_ERROR', {}, 503);
  }
}

/** The PostgreSQL error fields the service inspects (pg and PGlite both expose them). */
export interface PgErrorLike {
  code?: string;
  constraint?: string;
}

export function pgError(error: unknown): PgErrorLike | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const candidate = (error as { driverError?: unknown }).driverError ?? error;
  const { code, constraint } = candidate as PgErrorLike;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? { code, constraint } : undefined;
}

export const isUniqueViolation = (error: unknown, constraint?: string): boolean => {
  const pg = pgError(error);
  return pg?.code === '23505' && (constraint === undefined || pg.constraint === constraint);
};

/**
 * The one mapping of a unique violation to CONFLICT: runs `write` (in a savepoint of its own, so
 * the violation does not abort the caller's transaction) and answers a violation of `constraint`
 * with CONFLICT naming `field`.
 */
export async function uniqueOrConflict<T>(
  savepoint: <R>(fn: () => Promise<R>) => Promise<R>,
  write: () => Promise<T>,
  conflict: { constraint: string; message: string; field: string },
): Promise<T> {
  try {
    return await savepoint(write);
  } catch (error) {
    if (isUniqueViolation(error, conflict.constraint)) throw new ConflictError(conflict.message, { field: conflict.field });
    throw error;
  }
}

/** "1 active environment", "2 active environments". */
export const plural = (count: number, singular: string, pluralForm = `${singular}s`): string => `${count} ${count === 1 ? singular : pluralForm}`;

/** The database cannot be reached (or this process already closed it). */
export class DatabaseUnavailableError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'DatabaseUnavailableError';
  }
}

/** Connection-level failures: the database is down or restarting. */
export function isConnectionError(error: unknown): boolean {
  if (error instanceof DatabaseUnavailableError) return true;
  const pg = pgError(error);
  if (pg?.code && /^(08|57P0[1-3])/.test(pg.code)) return true;
  const message = error instanceof Error ? error.message : '';
  return /ECONNREFUSED|ECONNRESET|Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(message);
}
