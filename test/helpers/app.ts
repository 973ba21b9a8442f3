import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Client } from 'pg';
import pino, { type Logger } from 'pino';
import { DevIssuer, type DevTokenClaims } from '../../src/auth/dev-issuer';
import type { TokenVerifier } from '../../src/auth/jwt';
import { type Config, loadConfig } from '../../src/config';
import { Envelope } from '../../src/crypto/envelope';
import { Database } from '../../src/database/database';
import { seedDefaultOrganization } from '../../src/modules/organization/organization.seed';
import { type AppServer, createServer } from '../../src/server';

/** The real server when TEST_DATABASE_URL (or DATABASE_URL) is set, unless TEST_EMBEDDED_ONLY; PGlite otherwise. */
export function serverUrl(): string | undefined {
  if (process.env.TEST_EMBEDDED_ONLY) return undefined;
  return process.env.TEST_DATABASE_URL?.trim() || process.env.DATABASE_URL?.trim() || undefined;
}

export const usesRealPostgres = (): boolean => serverUrl() !== undefined;

/** A fresh database for one test file; dropped by the returned cleanup. */
export async function freshDatabaseUrl(): Promise<{ url: string | undefined; drop: () => Promise<void> }> {
  const base = serverUrl();
  if (!base) return { url: undefined, drop: async () => undefined };
  const name = `tenant_test_${process.pid}_${crypto.randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface GqlResult<T = Record<string, any>> {
  status: number;
  data: T | null;
  errors?: Array<{ message: string; path?: Array<string | number>; extensions?: Record<string, any> }>;
  headers: Headers;
}

export interface RequestOptions {
  /** Sends a dev token for this email (users are provisioned on first sight). */
  as?: string;
  token?: string;
  headers?: Record<string, string>;
  /** Which operation of a document with several runs. */
  operationName?: string;
}

export interface TestApp {
  url: string;
  /** The PostgreSQL database of this app (undefined on PGlite): a second instance can open it. */
  databaseUrl: string | undefined;
  db: Database;
  config: Config;
  issuer: DevIssuer;
  server: AppServer;
  /** The service's envelope (its master key is random per test app): tests decrypt what was stored. */
  envelope: Envelope;
  token(email: string, claims?: Omit<DevTokenClaims, 'email'>): Promise<string>;
  gql<T = Record<string, any>>(query: string, variables?: Record<string, unknown>, options?: RequestOptions): Promise<GqlResult<T>>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  env?: Record<string, string>;
  /** Replaces the dev issuer's verifier (external-issuer tests). */
  verifier?: TokenVerifier;
  /** The service's logger (log tests read what it writes); silent by default. */
  logger?: Logger;
  /** The service's SECRETS_MASTER_KEY (random by default): master-key rotation tests choose it. */
  masterKey?: Buffer;
}

/** Starts the whole service (migrations, seed, HTTP) on a fresh database and an ephemeral port. */
export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenant-test-'));
  const { url: databaseUrl, drop } = await freshDatabaseUrl();
  const config = loadConfig({ NODE_ENV: 'test', DATA_DIR: dataDir, LOG_LEVEL: 'silent', ...options.env });
  const db = await Database.open({
    url: databaseUrl,
    poolMax: config.dbPoolMax,
    statementTimeoutMs: config.dbStatementTimeoutMs,
    idleInTransactionTimeoutMs: config.dbIdleInTransactionTimeoutMs,
    connectionTimeoutMs: config.dbConnectionTimeoutMs,
    commitDeferMs: config.dbCommitDeferMs,
  });
  await seedDefaultOrganization(db, config.trialDays);
  const issuer = await DevIssuer.load(dataDir);
  const envelope = new Envelope(options.masterKey ?? crypto.randomBytes(32));
  const server = await createServer({
    config,
    db,
    logger: options.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    envelope,
    verifier: options.verifier ?? (await issuer.verifier()),
  });
  await new Promise<void>((resolve) => server.httpServer.listen(0, '127.0.0.1', resolve));
  const { port } = server.httpServer.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  const tokens = new Map<string, string>();
  const token = async (email: string, claims: Omit<DevTokenClaims, 'email'> = {}) => {
    const key = `${email}:${JSON.stringify(claims)}`;
    if (!tokens.has(key)) tokens.set(key, await issuer.sign({ email, ...claims }));
    return tokens.get(key)!;
  };
  return {
    url,
    databaseUrl,
    db,
    config,
    issuer,
    server,
    envelope,
    token,
    async gql(query, variables, opts = {}) {
      const bearer = opts.token ?? (opts.as ? await token(opts.as) : undefined);
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...opts.headers },
        body: JSON.stringify({ query, variables, ...(opts.operationName ? { operationName: opts.operationName } : {}) }),
      });
      const body = (await res.json()) as { data?: any; errors?: any[] };
      return { status: res.status, data: body.data ?? null, errors: body.errors, headers: res.headers };
    },
    async close() {
      await server.stop();
      await db.close();
      await drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Asserts no errors and returns data. */
export function ok<T>(result: GqlResult<T>): T {
  if (result.errors?.length) throw new Error(`unexpected errors: ${JSON.stringify(result.errors)}`);
  return result.data as T;
}

/** The codes of a result's errors, in order. */
export const codes = (result: GqlResult): string[] => (result.errors ?? []).map((e) => String(e.extensions?.code));
