import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config';

/** Bearer tokens and anything shaped like a JWT. */
const TOKEN = /\b(Bearer\s+)?eyJ[\w-]*\.[\w-]*\.[\w-]*/g;
/** Quoted values ("…", '…') and PostgreSQL's `Key (…)=(…)` / `=(…)` detail fragments. */
const QUOTED = /"[^"]*"|'[^']*'|=\([^)]*\)/g;

/** A message with every quoted value replaced: PostgreSQL and TypeORM quote the offending input. */
export function redactMessage(message: string): string {
  return message.replace(TOKEN, '[token]').replace(QUOTED, (match) => (match.startsWith('=') ? '=([redacted])' : `${match[0]}[redacted]${match[0]}`));
}

/** PostgreSQL's SQLSTATE and constraint, wherever the driver put them (pg, PGlite, TypeORM's driverError). */
function pgFields(error: object): { code?: string; constraint?: string } {
  const source = (error as { driverError?: unknown }).driverError ?? error;
  if (typeof source !== 'object' || source === null) return {};
  const { code, constraint } = source as { code?: unknown; constraint?: unknown };
  return {
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof constraint === 'string' ? { constraint } : {}),
  };
}

export interface SafeError {
  type: string;
  message: string;
  code?: string;
  constraint?: string;
  stack?: string;
}

/**
 * The `err` serializer: keeps what a developer needs (type, message with its quoted values
 * redacted, SQLSTATE, constraint, stack frames) and drops everything that may hold client data
 * or secrets — TypeORM's `parameters` and `query`, the driver's `detail`, `where`, `cause`.
 */
export function serializeError(error: unknown): SafeError | unknown {
  if (!(error instanceof Error)) return typeof error === 'string' ? redactMessage(error) : error;
  const type = error.name || error.constructor?.name || 'Error';
  const message = redactMessage(error.message);
  const frames = (error.stack ?? '').split('\n').filter((line) => /^\s+at /.test(line));
  return { type, message, ...pgFields(error), stack: [`${type}: ${message}`, ...frames].join('\n') };
}

/** Header and field names whose values are credentials, wherever they appear in a log object. */
export const REDACTED_PATHS = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'request.headers.authorization',
  'token',
  '*.token',
  'password',
  '*.password',
  'variables',
  '*.variables',
  'parameters',
  '*.parameters',
  'cloudCredentials',
  '*.cloudCredentials',
];

/**
 * The service's one logger: JSON lines, `err` through serializeError, credentials redacted.
 * `destination` lets tests read what would be written.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'tenant-service' },
    serializers: { err: serializeError, error: serializeError },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
}
