import fs from 'node:fs';
import path from 'node:path';
import { DataSource, type DataSourceOptions, type QueryRunner } from 'typeorm';
import { PGliteDriver } from 'typeorm-pglite';
import { ENTITIES } from './entities';
import { MIGRATIONS } from './migrations';

import { DatabaseUnavailableError } from '../common/errors';
import { APP_ROLE } from './roles';

export { APP_ROLE };
const MIGRATION_LOCK_KEY = 7_461_220_301;

export interface DatabaseOptions {
  /** postgres://… — absent: the embedded PGlite. */
  url?: string;
  /** PGlite data directory; absent: in memory (tests). */
  dataDir?: string;
  poolMax?: number;
  statementTimeoutMs?: number;
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
        connectionTimeoutMillis: 5000,
        statement_timeout: options.statementTimeoutMs ?? 15000,
        idle_in_transaction_session_timeout: 60000,
        application_name: 'tenant-service',
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

/**
 * One handle on the database for the process. PGlite has a single connection on which
 * concurrent transactions would interleave (a second transaction's set_config showing up in
 * the first), so on the embedded database every unit of work is queued: one at a time.
 */
export class Database {
  private tail: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly dataSource: DataSource,
    readonly embedded: boolean,
  ) {}

  /** Connects and brings the schema up to date (under an advisory lock, so instances may start together). */
  static async open(options: DatabaseOptions): Promise<Database> {
    const dataSource = new DataSource(dataSourceOptions(options));
    await dataSource.initialize();
    const db = new Database(dataSource, !options.url);
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

  /** Waits for the embedded database's single connection; on a server, returns at once. */
  private async exclusive(): Promise<() => void> {
    if (!this.embedded) return () => undefined;
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    const previous = this.tail;
    this.tail = previous.then(() => next);
    await previous;
    return release;
  }

  /** A dedicated connection (queued on PGlite) for the duration of fn, released afterwards. */
  async withConnection<T>(fn: (runner: QueryRunner) => Promise<T>): Promise<T> {
    if (this.closed) throw new DatabaseUnavailableError('database closed');
    const release = await this.exclusive();
    const runner = this.dataSource.createQueryRunner();
    try {
      await runner.connect();
      return await fn(runner);
    } finally {
      await runner.release().catch(() => undefined);
      release();
    }
  }

  /** Acquires a connection for a long-lived unit of work (a request transaction); the caller must call done(). */
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

  /** Readiness: reachable and migrated. */
  async ready(): Promise<boolean> {
    try {
      return await this.withConnection(async (runner) => {
        const rows: Array<{ pending: boolean }> = await runner.query(
          `SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS pending`,
          [APP_ROLE],
        );
        return rows[0]?.pending === false && !(await this.dataSource.showMigrations());
      });
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Wait for queued work on the embedded database before closing it.
    await this.exclusive().then((release) => release());
    this.closed = true;
    await this.dataSource.destroy();
  }
}
