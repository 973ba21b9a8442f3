import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Pool, Query } from 'pg';
import { DataSource, type DataSourceOptions, type QueryRunner } from 'typeorm';
import { PGliteDriver } from 'typeorm-pglite';
import { ENTITIES } from './entities';
import { MIGRATIONS } from './migrations';

import { DatabaseUnavailableError, pgError } from '../common/errors';
import { isUuid } from '../common/validation';
import { APP_ROLE } from './roles';
import { StatementResult } from './rows';
import { statementTypes } from './timestamps';

export { APP_ROLE };
const MIGRATION_LOCK_KEY = 7_461_220_301;

export interface DatabaseOptions {
  /** postgres://… — absent: the embedded PGlite. */
  url?: string;
  /** PGlite data directory; absent: in memory (tests). */
  dataDir?: string;
  poolMax?: number;
  /** PostgreSQL: `statement_timeout` of every session (default 15 s). */
  statementTimeoutMs?: number;
  /** PostgreSQL: `idle_in_transaction_session_timeout` of every session (default 60 s). */
  idleInTransactionTimeoutMs?: number;
  /** PostgreSQL: how long a unit of work waits for a connection from the pool (default 5 s). */
  connectionTimeoutMs?: number;
  /** Embedded database: how long a unit of work waits for the connection (default EMBEDDED_WAIT_MS). */
  connectionWaitMs?: number;
  /** PostgreSQL: how long the COMMIT of a unit of work that wrote nothing may wait for its connection's next statement (default 0: never deferred; see StatementSender.deferCommit). */
  commitDeferMs?: number;
}

export function dataSourceOptions(options: DatabaseOptions): DataSourceOptions {
  const common = { entities: ENTITIES, migrations: MIGRATIONS, synchronize: false, migrationsRun: false, logging: false } as const;
  if (options.url) {
    return {
      ...common,
      type: 'postgres',
      url: options.url,
      extra: {
        max: options.poolMax ?? 10,
        // Fail fast when the pool is exhausted or the server is gone, rather than queueing forever.
        connectionTimeoutMillis: options.connectionTimeoutMs ?? 5000,
        // Sent as start-up parameters: they hold for the whole session, across SET LOCAL ROLE.
        statement_timeout: options.statementTimeoutMs ?? 15000,
        idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs ?? 60000,
        application_name: 'tenant-service',
        // pg's pipeline mode: a statement goes out without waiting for the answer to the one
        // before it (PostgreSQL answers in order) — the rate-limit counter ahead of a unit of
        // work's BEGIN, sibling reads of one level of a query (TenantTransaction.query).
        pipeline: true,
        // The type parsers of every statement on these connections (pg's, with a fast timestamptz);
        // per client rather than per statement, so that a statement needs no config object.
        types: statementTypes,
      },
    };
  }
  if (options.dataDir) fs.mkdirSync(path.dirname(options.dataDir), { recursive: true });
  return {
    ...common,
    type: 'postgres',
    driver: new PGliteDriver(options.dataDir ? { dataDir: options.dataDir } : {}).driver,
  };
}

/** The part of a pg client the statement sender uses. */
interface PgClient {
  query(statement: Statement): unknown;
  escapeLiteral(value: string): string;
  /** pg's pipeline mode (Client option `pipeline`): queries are written without waiting for the previous answer. */
  pipeline?: boolean;
  connection?: { parsedStatements?: Record<string, string>; stream?: { cork(): void; uncork(): void } };
}

/**
 * One statement for a pg client, made from its text, values and callback. Handed a config object
 * instead, pg copies it property by property (utils.cloneQueryConfig, about 3 µs a statement: 1 to
 * 2 % of a small request's CPU). The client's type parsers apply (the pool's `types`).
 */
class Statement extends Query {
  declare name?: string;
  constructor(text: string, values: unknown[] | undefined, name: string | undefined, callback: (error: Error | undefined, result: unknown) => void) {
    super(text, values, callback);
    if (name !== undefined) this.name = name;
    // Its (first) result's rows are built by StatementResult (./rows.ts); the client gives it its type parsers on submit.
    const own = this as unknown as { _result: unknown; _results: unknown };
    own._result = own._results = new StatementResult(text);
  }
}

/** Hands a statement to the client (in pipeline mode it is written at once); resolves with pg's result (an array of them for several statements in one text). */
function submitted<R>(client: PgClient, text: string, values?: unknown[], name?: string): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    client.query(
      new Statement(text, values, name, (error, result) => {
        if (!error) return resolve(result as R);
        // As pg's own promise does: a stack from here rather than from the socket's read.
        Error.captureStackTrace(error);
        reject(error);
      }),
    );
  });
}

/**
 * Sends one statement with its protocol messages (Parse, Bind, Describe, Execute, Sync) in one
 * socket write: pg writes each message on its own, and an idle client submits synchronously, so
 * corking the socket around the call turns four or five writes into one writev.
 */
function corked<T>(client: PgClient, submit: () => T): T {
  const stream = client.connection?.stream;
  if (!stream) return submit();
  // A deferred COMMIT of the connection's last unit of work leaves in this same write, ahead.
  const owed = takeDeferred(client);
  stream.cork();
  try {
    return submit();
  } finally {
    stream.uncork();
    if (owed) stream.uncork();
  }
}

/**
 * Connections whose last unit of work's COMMIT waits in the corked socket (StatementSender.deferCommit),
 * with the timer that writes it when nobody sends on the connection first.
 */
const deferredCommits = new WeakMap<PgClient, NodeJS.Timeout>();

/** Takes a connection's deferred COMMIT: true when one waits (the caller uncorks once more, after its own statement joined it). */
function takeDeferred(client: PgClient): boolean {
  const timer = deferredCommits.get(client);
  if (timer === undefined) return false;
  clearTimeout(timer);
  deferredCommits.delete(client);
  return true;
}

/** Writes a connection's deferred COMMIT now, on its own, if one waits. */
function flushDeferred(client: PgClient): void {
  if (takeDeferred(client)) client.connection?.stream?.uncork();
}

/** Hands an ahead statement its outcome (never rejects: the caller goes on either way). */
function settled(ahead: AheadStatement, result: Promise<unknown[]>): Promise<void> {
  return result.then(
    (rows) => ahead.settle({ rows }),
    (error: unknown) => ahead.settle({ error }),
  );
}

/**
 * A statement to run on a unit of work's connection just before its BEGIN, outside the
 * transaction (committed on its own at once): TenantTransaction.ahead. `settle` gets its rows or
 * its error; it is called exactly once.
 */
export interface AheadStatement {
  sql: string;
  params: unknown[];
  settle(outcome: { rows: unknown[] } | { error: unknown }): void;
}

/** Sends a unit of work's statements (Database.statementSender). */
export interface StatementSender {
  send(sql: string, params?: unknown[]): Promise<unknown>;
  /**
   * BEGIN, then this statement (text parameters only): one round trip where the driver allows it.
   * Returns the statement's rows. `ahead`, when given, is sent first, in the same socket write
   * where the driver pipelines (PostgreSQL), otherwise as a statement of its own before BEGIN.
   * `follow`, when given, is called once BEGIN and this statement are handed to the driver, so that
   * what it sends runs after them, inside the transaction: on PostgreSQL without waiting for their
   * answer (in pipeline mode in the same socket write), on the embedded database after it.
   */
  beginWith(sql: string, params: Array<string | null>, ahead?: AheadStatement, follow?: () => void): Promise<unknown>;
  /**
   * Ends a transaction that wrote nothing without a socket write of its own: COMMIT waits in the
   * corked socket and leaves with the connection's next statement (the next unit of work's opening,
   * ahead of it), or on its own after DatabaseOptions.commitDeferMs. Returns false where it cannot
   * (the embedded database, deferral off): the caller sends COMMIT and waits for it. Its outcome is
   * not awaited: a COMMIT that fails after reads loses nothing.
   */
  deferCommit?(): boolean;
}

/** Prepared statements whose plan went stale on a connection; re-prepared on their next use there. */
const staleStatements = new WeakMap<PgClient, Set<string>>();

/** Statements prepared in SQL (PREPARE, see beginWith) on each connection, by name. */
const sqlPrepared = new WeakMap<PgClient, Set<string>>();

const preparedNames = new Map<string, string>();
/** A stable name per SQL text (the same text is the same prepared statement on every connection). */
function preparedName(sql: string): string {
  let name = preparedNames.get(sql);
  if (!name) {
    name = `ts_${createHash('sha1').update(sql).digest('hex').slice(0, 20)}`;
    preparedNames.set(sql, name);
  }
  return name;
}

/**
 * A statement's parameters with every array of uuids written as one array literal (`{a,b,…}`).
 * pg's own serializer quotes and escapes each element (two regular expressions and a few strings
 * per element: ~190 KB of garbage per Q3 request, whose statements carry ~750 ids); a uuid needs
 * neither quoting nor escaping, and `{a,b}` is the same value as `{"a","b"}` for uuid[] and
 * text[] alike. Any other array, and an empty one, is left to pg. The same array is returned when
 * nothing changes.
 */
export function withUuidArrayLiterals(params: unknown[]): unknown[] {
  let out: unknown[] | undefined;
  for (let i = 0; i < params.length; i++) {
    const value = params[i];
    if (!Array.isArray(value) || value.length === 0 || !value.every(isUuid)) continue;
    (out ??= params.slice())[i] = `{${value.join(',')}}`;
  }
  return out ?? params;
}

/** The unit-of-work connections, as /metrics reports them (Database.poolStats). */
export interface PoolStats {
  /** Open connections (on the embedded database: its single connection). */
  total: number;
  /** Open connections not lent to a unit of work. */
  idle: number;
  /** Units of work waiting for a connection. */
  waiting: number;
  /** The most connections the pool opens. */
  max: number;
}

/** How long a unit of work waits for the embedded database's single connection before giving up (503). */
export const EMBEDDED_WAIT_MS = 10_000;

/**
 * The embedded database's single connection, handed out one unit of work at a time in arrival
 * order. A waiter gives up after `timeoutMs` (the request then fails with 503) instead of
 * queueing forever behind a stuck transaction.
 */
class ConnectionQueue {
  private busy = false;
  private readonly waiters: Array<{ grant: () => void }> = [];

  get isBusy(): boolean {
    return this.busy;
  }

  /** One connection, busy or idle, and the units of work queued for it. */
  stats(): PoolStats {
    return { total: 1, idle: this.busy ? 0 : 1, waiting: this.waiters.length, max: 1 };
  }

  acquire(timeoutMs: number): Promise<() => void> {
    const release = () => {
      const next = this.waiters.shift();
      if (next) next.grant();
      else this.busy = false;
    };
    if (!this.busy) {
      this.busy = true;
      return Promise.resolve(once(release));
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          clearTimeout(timer);
          resolve(once(release));
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new DatabaseUnavailableError(`no connection to the embedded database within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}

const once = (fn: () => void): (() => void) => {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      fn();
    }
  };
};

/**
 * One handle on the database for the process. PGlite has a single connection on which
 * concurrent transactions would interleave (a second transaction's settings showing up in
 * the first), so on the embedded database every unit of work is queued: one at a time.
 */
export class Database {
  private readonly queue = new ConnectionQueue();
  /** Whether a unit of work's connection writes a statement sent ahead of its BEGIN together with it (PostgreSQL: pg's pipeline mode). */
  get pipelines(): boolean {
    return !this.embedded;
  }
  private closed = false;
  /** PostgreSQL: a connection of its own for /readyz, so that readiness never waits behind requests. */
  private readonly health?: Pool;
  /** PostgreSQL: connections of their own for short statements outside any unit of work (rate-limit counters). */
  private readonly sidePool?: Pool;

  private constructor(
    readonly dataSource: DataSource,
    readonly embedded: boolean,
    url: string | undefined,
    private readonly waitMs: number,
    sidePoolMax = 2,
    private readonly commitDeferMs = 0,
  ) {
    if (url) this.health = new Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 2000, idleTimeoutMillis: 10_000, statement_timeout: 2000, application_name: 'tenant-service-health' });
    this.health?.on('error', () => undefined);
    if (url) {
      // Never the owner's rights: these sessions start as the service's role (the functions they call are SECURITY DEFINER).
      // A side statement waits at most 1 s for a connection and runs at most 1 s: its callers fail open.
      this.sidePool = new Pool({ connectionString: url, max: sidePoolMax, connectionTimeoutMillis: 1000, idleTimeoutMillis: 30_000, statement_timeout: 1000, application_name: 'tenant-service-side', options: `-c role=${APP_ROLE}` });
      this.sidePool.on('error', () => undefined);
    }
  }

  /** Connects and brings the schema up to date (under an advisory lock, so instances may start together). */
  static async open(options: DatabaseOptions): Promise<Database> {
    const dataSource = new DataSource(dataSourceOptions(options));
    await dataSource.initialize();
    const db = new Database(
      dataSource,
      !options.url,
      options.url,
      options.connectionWaitMs ?? EMBEDDED_WAIT_MS,
      Math.max(2, Math.ceil((options.poolMax ?? 10) / 2)),
      options.commitDeferMs ?? 0,
    );
    await db.migrate();
    return db;
  }

  private async migrate(): Promise<void> {
    await this.withConnection(async (runner) => {
      await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      try {
        // Migrations run on this same connection: on PGlite there is no other.
        const pending = await this.dataSource.showMigrations();
        if (pending) await this.dataSource.runMigrations({ transaction: 'each' });
      } finally {
        await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
      }
    });
  }

  /** Waits (bounded) for the embedded database's single connection; on a server, returns at once (the pool bounds its own wait). */
  private async exclusive(): Promise<() => void> {
    if (!this.embedded) return () => undefined;
    return this.queue.acquire(this.waitMs);
  }

  /** A dedicated connection (queued on PGlite) for the duration of fn, released afterwards. */
  async withConnection<T>(fn: (runner: QueryRunner) => Promise<T>): Promise<T> {
    const lease = await this.lease();
    // fn talks to TypeORM's runner, not through a statement sender: a deferred COMMIT leaves first, now.
    const client = (lease.runner as unknown as { databaseConnection?: PgClient }).databaseConnection;
    if (client) flushDeferred(client);
    try {
      return await fn(lease.runner);
    } finally {
      await lease.done();
    }
  }

  /** Acquires a connection for a unit of work (a transaction); the caller must call done(). */
  async lease(): Promise<{ runner: QueryRunner; done: () => Promise<void> }> {
    if (this.closed) throw new DatabaseUnavailableError('database closed');
    const release = await this.exclusive();
    const runner = this.dataSource.createQueryRunner();
    try {
      await runner.connect();
    } catch (error) {
      await runner.release().catch(() => undefined);
      release();
      throw error;
    }
    let finished = false;
    return {
      runner,
      done: async () => {
        if (finished) return;
        finished = true;
        await runner.release().catch(() => undefined);
        release();
      },
    };
  }

  /**
   * How a unit of work sends statements on its leased connection.
   *
   * On PostgreSQL it talks to the pg client directly: a statement with parameters goes out as a
   * named prepared statement (one per distinct SQL text and connection), so PostgreSQL parses and
   * plans it once per connection instead of on every request — with row-level security planning
   * is a large share of a small query's cost; and BEGIN travels with the statement that opens the
   * transaction, in one round trip (simple protocol: `BEGIN; EXECUTE name(<arguments as escaped
   * literals>)` of a statement prepared in SQL once per connection). On PGlite
   * every statement goes through TypeORM, one by one.
   */
  statementSender(runner: QueryRunner): StatementSender {
    const client = this.embedded ? undefined : (runner as unknown as { databaseConnection?: PgClient }).databaseConnection;
    if (!client || typeof client.query !== 'function' || typeof client.escapeLiteral !== 'function') {
      const send = (sql: string, params?: unknown[]) => runner.query(sql, params);
      return {
        send,
        beginWith: async (sql, params, ahead, follow) => {
          if (ahead) await settled(ahead, send(ahead.sql, ahead.params) as Promise<unknown[]>);
          await send('BEGIN');
          const rows = await send(sql, params);
          follow?.();
          return rows;
        },
      };
    }
    /** Hands the statement to the client now (in pipeline mode: writes it now), whatever is still in flight before it. */
    const submit = (sql: string, params?: unknown[]): Promise<unknown[]> => {
      if (!params || params.length === 0) return submitted<{ rows: unknown[] }>(client, sql).then((r) => r.rows);
      const name = preparedName(sql);
      const stale = staleStatements.get(client);
      if (stale?.delete(name)) {
        // Its table changed shape since it was prepared (another instance migrated): prepare it anew.
        submitted(client, `DEALLOCATE ${name}`).catch(() => undefined);
        delete client.connection?.parsedStatements?.[name];
      }
      return submitted<{ rows: unknown[] }>(client, sql, withUuidArrayLiterals(params), name).then(
        (r) => r.rows,
        (error: unknown) => {
          // "cached plan must not change result type": this transaction is lost, the next use re-prepares.
          if (pgError(error)?.code === '0A000') staleStatements.set(client, (stale ?? new Set()).add(name));
          throw error;
        },
      );
    };
    let corkedForTick = false;
    /**
     * In pipeline mode, statements handed over in the same turn of the event loop (the loaders
     * of one level of a query) leave in one socket write: the socket stays corked until the turn
     * ends. Otherwise each statement's messages leave in one write of their own.
     */
    const batched = <T>(submitNow: () => T): T => {
      const stream = client.connection?.stream;
      if (!client.pipeline || !stream) return corked(client, submitNow);
      if (!corkedForTick) {
        corkedForTick = true;
        const owed = takeDeferred(client);
        stream.cork();
        process.nextTick(() => {
          corkedForTick = false;
          stream.uncork();
          if (owed) stream.uncork();
        });
      }
      return submitNow();
    };
    const send = (sql: string, params?: unknown[]): Promise<unknown> => batched(() => submit(sql, params));
    const literal = (value: unknown): string => {
      if (value === null || value === undefined) return 'NULL';
      if (typeof value !== 'string') throw new TypeError('beginWith takes text parameters only');
      return client.escapeLiteral(value);
    };
    const deferMs = this.commitDeferMs;
    return {
      send,
      deferCommit: () => {
        const stream = client.connection?.stream;
        if (deferMs <= 0 || !client.pipeline || !stream || deferredCommits.has(client)) return false;
        // Handed to the client (which in pipeline mode writes at once: into the corked socket), not sent.
        stream.cork();
        submitted(client, 'COMMIT').catch(() => undefined);
        deferredCommits.set(
          client,
          setTimeout(() => flushDeferred(client), deferMs),
        );
        return true;
      },
      beginWith: async (sql, params, ahead, follow) => {
        // The statement is prepared in SQL (PREPARE) once per connection, in this same message the
        // first time; each opening then only EXECUTEs it with its arguments as literals: parsed and
        // planned once, and still one statement with BEGIN.
        const name = `o${preparedName(sql)}`;
        let known = sqlPrepared.get(client);
        if (!known) sqlPrepared.set(client, (known = new Set()));
        const prepare = known.has(name) ? '' : `PREPARE ${name} AS ${sql}; `;
        known.add(name);
        const text = `${prepare}BEGIN; EXECUTE ${name}(${params.map(literal).join(', ')})`;
        const open = () => {
          const opening = submitted<Array<{ rows: unknown[] }>>(client, text);
          // Inside the same cork: the following statement leaves in the same write.
          follow?.();
          return opening;
        };
        let opened: Promise<Array<{ rows: unknown[] }>>;
        if (ahead && client.pipeline) {
          // Both in one write: the ahead statement runs (and commits) first, then BEGIN and this statement.
          opened = corked(client, () => {
            void settled(ahead, submit(ahead.sql, ahead.params));
            return open();
          });
        } else {
          if (ahead) await settled(ahead, corked(client, () => submit(ahead.sql, ahead.params)));
          opened = corked(client, open);
        }
        let results: Array<{ rows: unknown[] }>;
        try {
          results = await opened;
        } catch (error) {
          // Not prepared after all (the PREPARE itself failed, then the EXECUTE): prepared again next time.
          if (pgError(error)?.code === '26000') known.delete(name);
          throw error;
        }
        return results[results.length - 1]!.rows;
      },
    };
  }

  /**
   * One statement outside any unit of work, committed on its own (autocommit): work that must not
   * roll back with a request nor wait in its transaction — the rate-limit counters. On PostgreSQL
   * it runs on a small pool of its own, as the service's role, so it can run while the request's
   * transaction opens, and never competes with units of work for their pool (a request holding a
   * pooled connection never waits for a second one from the same pool). On the embedded database
   * there is one connection: the statement is queued like a unit of work of its own, so the caller
   * must send it before its request's transaction leases the connection (or after it ends), never
   * while holding it.
   */
  async sideStatement<T>(sql: string, params: unknown[]): Promise<T[]> {
    if (this.closed) throw new DatabaseUnavailableError('database closed');
    // Named: parsed and planned once per side connection, not on every request.
    if (this.sidePool) return (await this.sidePool.query({ name: preparedName(sql), text: sql, values: params })).rows as T[];
    return (await this.withConnection((runner) => runner.query(sql, params))) as T[];
  }

  /** The request pool's connections for /metrics: TypeORM's pg Pool on PostgreSQL, the connection queue on PGlite. */
  poolStats(): PoolStats {
    if (this.embedded) return this.queue.stats();
    const pool = (this.dataSource.driver as unknown as { master?: Pool }).master;
    if (!pool) return { total: 0, idle: 0, waiting: 0, max: 0 };
    return { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: pool.options.max ?? 10 };
  }

  /**
   * Readiness: reachable and migrated. Never queues behind requests: on PostgreSQL it asks on a
   * connection of its own; on the embedded database, a connection in use by a request is proof
   * enough that the in-process database is up (it was migrated when it was opened).
   */
  async ready(): Promise<boolean> {
    if (this.closed) return false;
    const check = `SELECT (SELECT count(*)::int FROM migrations WHERE name = ANY($1::text[])) AS applied, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2) AS role`;
    const names = MIGRATIONS.map((m) => m.name);
    const verdict = (row: { applied: number; role: boolean } | undefined) => row?.applied === names.length && row.role === true;
    try {
      if (this.health) return verdict((await this.health.query(check, [names, APP_ROLE])).rows[0]);
      if (this.queue.isBusy) return true;
      return verdict((await this.withConnection((runner) => runner.query(check, [names, APP_ROLE])))[0]);
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // No new unit of work from here on; the queued ones finish first, then the database closes
    // while this holds the embedded connection (nobody is handed a connection being destroyed).
    this.closed = true;
    if (this.embedded) await this.queue.acquire(60_000).catch(() => undefined);
    await this.health?.end().catch(() => undefined);
    await this.sidePool?.end().catch(() => undefined);
    await this.dataSource.destroy();
  }
}
