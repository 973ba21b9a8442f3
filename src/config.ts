import net from 'node:net';
import path from 'node:path';

/** Raised for a configuration value the service cannot start with; the message is one line naming the variable. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

export type NodeEnv = 'development' | 'production' | 'test';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface ExternalIssuerConfig {
  jwksUrl: string;
  issuer: string;
  audience: string;
}

/**
 * Origins allowed to call the API from a browser (SPEC §7): exact origins, any origin (`*`,
 * never in production), or any `http://localhost:<port>` / `http://127.0.0.1:<port>` (the
 * default outside production).
 */
export type CorsOrigins = { kind: 'list'; origins: string[] } | { kind: 'any' } | { kind: 'loopback' };

export interface Config {
  port: number;
  /** Interface to listen on. */
  host: string;
  corsOrigins: CorsOrigins;
  /** Highest query cost (objects a query may return, SPEC §8) accepted before execution. */
  maxQueryCost: number;
  databaseUrl?: string;
  dataDir: string;
  dbPoolMax: number;
  /** `statement_timeout` of the service's PostgreSQL sessions. */
  dbStatementTimeoutMs: number;
  /** `idle_in_transaction_session_timeout` of the service's PostgreSQL sessions. */
  dbIdleInTransactionTimeoutMs: number;
  /** How long a query's COMMIT may wait for its connection's next statement (0: sent and awaited at once). */
  dbCommitDeferMs: number;
  /** How long a unit of work waits for a pooled connection (or a new one) before failing with 503. */
  dbConnectionTimeoutMs: number;
  auth: {
    external?: ExternalIssuerConfig;
    algorithms: string[];
  };
  /** 32 bytes; absent outside production until the key file in DATA_DIR is read or made. */
  secretsMasterKey?: Buffer;
  /** SECRETS_MASTER_KEY_PREVIOUS: the master key being rotated away from (data keys not yet rewrapped still open). */
  secretsMasterKeyPrevious?: Buffer;
  adminEmail: string;
  nodeEnv: NodeEnv;
  logLevel: LogLevel;
  introspection: boolean;
  explorer: boolean;
  trustedProxies: string[];
  trialDays: number;
  retentionDays: number;
  personalOrganizations: boolean;
  rateLimitUserPerMinute: number;
  /** RATE_LIMITS=false: no request is counted or refused (limits enforced in front of the service, or a benchmark). */
  rateLimits: boolean;
  jobIntervalSeconds: number;
  /** HMAC-SHA256 key of the billing webhook; without it POST /billing/webhook answers 404. */
  billingWebhookSecret?: string;
}

type Env = Record<string, string | undefined>;

/** An empty variable counts as unset (SPEC §1). */
function read(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^-?\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number (got "${raw}")`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max} (got ${value})`);
  return value;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const lower = raw.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(lower)) return true;
  if (['false', '0', 'no', 'off'].includes(lower)) return false;
  throw new ConfigError(name, `must be true or false (got "${raw}")`);
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${allowed.join(', ')} (got "${raw}")`);
  }
  return raw as T;
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = read(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, 'must be an absolute URL');
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use ${protocols.map((p) => p.replace(':', '')).join(' or ')}`);
  }
  return raw;
}

const EMAIL = /^[^\s@]+@[^\s@]+$/;
const SUPPORTED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

function isCidrOrAddress(value: string): boolean {
  const [address, bits, ...rest] = value.split('/');
  if (rest.length > 0 || !address) return false;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  const isV4 = v4 !== null && v4.slice(1).every((octet) => Number(octet) <= 255);
  const isV6 = !isV4 && address.includes(':') && /^[0-9a-fA-F:.]+$/.test(address);
  if (!isV4 && !isV6) return false;
  if (bits === undefined) return true;
  return /^\d+$/.test(bits) && Number(bits) <= (isV4 ? 32 : 128);
}

function webhookSecret(env: Env): string | undefined {
  const raw = read(env, 'BILLING_WEBHOOK_SECRET');
  if (raw !== undefined && raw.length < 16) throw new ConfigError('BILLING_WEBHOOK_SECRET', 'must be at least 16 characters');
  return raw;
}

function corsOrigins(env: Env, production: boolean): CorsOrigins {
  const raw = read(env, 'CORS_ORIGINS');
  if (raw === undefined) return production ? { kind: 'list', origins: [] } : { kind: 'loopback' };
  if (raw === '*') {
    if (production) throw new ConfigError('CORS_ORIGINS', '"*" is not allowed in production: list the exact origins');
    return { kind: 'any' };
  }
  const origins = raw.split(',').map((o) => o.trim()).filter(Boolean);
  for (const origin of origins) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    // An origin is scheme://host[:port], exactly as browsers send it: no path, no trailing slash.
    if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.origin !== origin) {
      throw new ConfigError('CORS_ORIGINS', `"${origin}" is not an origin such as https://app.example.com (scheme, host and port only)`);
    }
  }
  return { kind: 'list', origins };
}

function host(env: Env, production: boolean): string {
  const raw = read(env, 'HOST');
  if (raw === undefined) return production ? '0.0.0.0' : '127.0.0.1';
  if (raw !== 'localhost' && net.isIP(raw) === 0) {
    throw new ConfigError('HOST', `must be an IP address such as 127.0.0.1, 0.0.0.0 or :: (got "${raw}")`);
  }
  return raw;
}

/**
 * Reads and validates the whole configuration at once. Any bad value throws a ConfigError whose
 * message is the single line the process prints before exiting.
 */
export function loadConfig(env: Env = process.env): Config {
  const nodeEnv = oneOf(env, 'NODE_ENV', ['development', 'production', 'test'] as const, 'development');
  const production = nodeEnv === 'production';

  const jwksUrl = url(env, 'AUTH_JWKS_URL', ['https:', 'http:']);
  const issuer = read(env, 'AUTH_ISSUER');
  const audience = read(env, 'AUTH_AUDIENCE');
  const externalParts = { AUTH_JWKS_URL: jwksUrl, AUTH_ISSUER: issuer, AUTH_AUDIENCE: audience };
  const given = Object.entries(externalParts).filter(([, v]) => v !== undefined);
  if (given.length > 0 && given.length < 3) {
    const missing = Object.entries(externalParts).find(([, v]) => v === undefined)![0];
    throw new ConfigError(missing, 'must be set together with AUTH_JWKS_URL, AUTH_ISSUER and AUTH_AUDIENCE');
  }
  if (production && given.length === 0) {
    throw new ConfigError('AUTH_JWKS_URL', 'is required in production (with AUTH_ISSUER and AUTH_AUDIENCE): the dev issuer is never used there');
  }

  const algorithms = (read(env, 'AUTH_ALGORITHMS') ?? 'RS256,ES256').split(',').map((a) => a.trim()).filter(Boolean);
  for (const alg of algorithms) {
    if (!SUPPORTED_ALGORITHMS.includes(alg)) {
      throw new ConfigError('AUTH_ALGORITHMS', `"${alg}" is not an accepted asymmetric algorithm (${SUPPORTED_ALGORITHMS.join(', ')})`);
    }
  }
  if (algorithms.length === 0) throw new ConfigError('AUTH_ALGORITHMS', 'must name at least one algorithm');

  const masterKey = (name: string): Buffer | undefined => {
    const raw = read(env, name);
    if (raw === undefined) return undefined;
    const decoded = /^[A-Za-z0-9+/]+={0,2}$/.test(raw) ? Buffer.from(raw, 'base64') : Buffer.alloc(0);
    if (decoded.length !== 32) throw new ConfigError(name, 'must be 32 bytes encoded in base64 (e.g. `openssl rand -base64 32`)');
    return decoded;
  };
  const secretsMasterKey = masterKey('SECRETS_MASTER_KEY');
  const secretsMasterKeyPrevious = masterKey('SECRETS_MASTER_KEY_PREVIOUS');
  if (secretsMasterKey === undefined && production) {
    throw new ConfigError('SECRETS_MASTER_KEY', 'is required in production (32 bytes, base64)');
  }

  const dbIdleInTransactionTimeoutMs = int(env, 'DB_IDLE_IN_TRANSACTION_TIMEOUT_MS', 60000, 100, 3600000);
  const dbCommitDeferMs = int(env, 'DB_COMMIT_DEFER_MS', 5, 0, 1000);
  if (dbCommitDeferMs * 10 > dbIdleInTransactionTimeoutMs) {
    // PostgreSQL would end a connection whose deferred COMMIT is still waiting (and the request that takes it next).
    throw new ConfigError('DB_COMMIT_DEFER_MS', `must be at most a tenth of DB_IDLE_IN_TRANSACTION_TIMEOUT_MS (${dbIdleInTransactionTimeoutMs} ms)`);
  }

  const adminEmail = (read(env, 'ADMIN_EMAIL') ?? 'admin@localhost').toLowerCase();
  if (!EMAIL.test(adminEmail)) throw new ConfigError('ADMIN_EMAIL', `is not an email address (got "${adminEmail}")`);

  const trustedProxies = (read(env, 'TRUSTED_PROXIES') ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  for (const proxy of trustedProxies) {
    if (!isCidrOrAddress(proxy)) throw new ConfigError('TRUSTED_PROXIES', `"${proxy}" is not an IP address or CIDR`);
  }

  return {
    port: int(env, 'PORT', 4000, 0, 65535),
    host: host(env, production),
    corsOrigins: corsOrigins(env, production),
    maxQueryCost: int(env, 'MAX_QUERY_COST', 100_000, 1, 1_000_000_000),
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    dataDir: path.resolve(read(env, 'DATA_DIR') ?? './.data'),
    // Start-up holds the migration lock on one connection while migrating on another.
    dbPoolMax: int(env, 'DB_POOL_MAX', 10, 2, 1000),
    dbStatementTimeoutMs: int(env, 'DB_STATEMENT_TIMEOUT_MS', 15000, 100, 600000),
    dbIdleInTransactionTimeoutMs,
    dbConnectionTimeoutMs: int(env, 'DB_CONNECTION_TIMEOUT_MS', 5000, 100, 60000),
    dbCommitDeferMs,
    auth: {
      external: jwksUrl && issuer && audience ? { jwksUrl, issuer, audience } : undefined,
      algorithms,
    },
    secretsMasterKey,
    secretsMasterKeyPrevious,
    adminEmail,
    nodeEnv,
    logLevel: oneOf(env, 'LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, nodeEnv === 'test' ? 'silent' : 'info'),
    introspection: bool(env, 'GRAPHQL_INTROSPECTION', !production),
    explorer: bool(env, 'EXPLORER', !production),
    trustedProxies,
    trialDays: int(env, 'TRIAL_DAYS', 14, 0, 365),
    retentionDays: int(env, 'RETENTION_DAYS', 30, 0, 3650),
    personalOrganizations: bool(env, 'PERSONAL_ORGANIZATIONS', false),
    rateLimitUserPerMinute: int(env, 'RATE_LIMIT_USER_PER_MINUTE', 600, 1, 1_000_000),
    rateLimits: bool(env, 'RATE_LIMITS', true),
    jobIntervalSeconds: int(env, 'JOB_INTERVAL_SECONDS', 60, 1, 86400),
    billingWebhookSecret: webhookSecret(env),
  };
}
