import type { QueryRunner } from 'typeorm';
import type { Database } from './database';
import { APP_ROLE } from './roles';

export type SqlQuery = <T = Record<string, unknown>>(sql: string, params?: unknown[]) => Promise<T[]>;

/** TypeORM answers UPDATE/DELETE … RETURNING with [rows, affected]; every caller here wants the rows. */
function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result) && result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number') return result[0] as T[];
  return result as T[];
}

/**
 * The one transaction of a request. It opens lazily on the first query and, before anything
 * else runs in it, switches to the service's non-owner role and sets the principal
 * (transaction-local settings the row-level security policies read). It ends when the request
 * ends: committed, or rolled back when a statement broke it. Each mutation runs inside a
 * savepoint, so a failed mutation leaves no partial write and no audit event while the others
 * in the same request stand.
 */
export class TenantTransaction {
  /** Statements sent so far (the N+1 tests and the request log read it). */
  queryCount = 0;
  private opening?: Promise<QueryRunner>;
  private lease?: { runner: QueryRunner; done: () => Promise<void> };
  private orgIds: string[] = [];
  private savepoints = 0;
  private finished = false;
  /**
   * Statements of one request go out one after another: resolvers run in parallel, but a
   * connection executes one statement at a time (pg 9 will refuse overlapping client.query calls).
   */
  private pending: Promise<unknown> = Promise.resolve();
  /** Open savepoints. A statement failing at depth 0 has aborted the whole transaction. */
  private depth = 0;
  private broken = false;
  /** A mutation's savepoint was released into the transaction: there are writes to lose. */
  private wrote = false;

  constructor(
    private readonly db: Database,
    private readonly requestId: string,
    /** Runs once, first, with the role already switched: resolves the principal and calls setScope. */
    private readonly onOpen: (query: SqlQuery, tx: TenantTransaction) => Promise<void>,
  ) {}

  get isOpen(): boolean {
    return this.opening !== undefined;
  }

  /** Opens the transaction (bootstrapping the principal) without sending a statement of its own. */
  async open(): Promise<void> {
    await this.runner();
  }

  private runner(): Promise<QueryRunner> {
    if (this.finished) return Promise.reject(new Error('request transaction already finished'));
    this.opening ??= this.begin();
    return this.opening;
  }

  private async begin(): Promise<QueryRunner> {
    this.lease = await this.db.lease();
    const { runner } = this.lease;
    const original = runner.query.bind(runner);
    runner.query = ((sql: string, params?: unknown[], structured?: boolean) => {
      this.queryCount += 1;
      return (original as (q: string, p?: unknown[], s?: boolean) => Promise<unknown>)(sql, params, structured);
    }) as QueryRunner['query'];
    await runner.startTransaction();
    // set_config('role', …, true) is SET LOCAL ROLE: from here on, row-level security applies.
    try {
      await runner.query(`SELECT set_config('role', $1, true), set_config('app.request_id', $2, true)`, [APP_ROLE, this.requestId]);
      await this.onOpen(async (sql, params) => rowsOf(await runner.query(sql, params)), this);
    } catch (error) {
      // Never hand a connection back to the pool in the middle of a transaction.
      await runner.rollbackTransaction().catch(() => undefined);
      throw error;
    }
    return runner;
  }

  /**
   * Sets the principal for the policies: the user and the organizations it may reach. Only the
   * request's own bootstrap, a new organization and an accepted membership widen it.
   */
  async setScope(query: SqlQuery, userId: string | null, orgIds: string[]): Promise<void> {
    this.orgIds = [...new Set(orgIds)];
    await query(`SELECT set_config('app.user_id', $1, true), set_config('app.org_ids', $2, true)`, [userId ?? '', this.orgIds.join(',')]);
  }

  /** Adds an organization to the scope (the principal just created it or joined it). */
  async addToScope(organizationId: string): Promise<void> {
    if (this.orgIds.includes(organizationId)) return;
    this.orgIds = [...this.orgIds, organizationId];
    await this.query(`SELECT set_config('app.org_ids', $1, true)`, [this.orgIds.join(',')]);
  }

  /** Removes an organization from the scope (the principal left it). */
  async removeFromScope(organizationId: string): Promise<void> {
    if (!this.orgIds.includes(organizationId)) return;
    this.orgIds = this.orgIds.filter((id) => id !== organizationId);
    await this.query(`SELECT set_config('app.org_ids', $1, true)`, [this.orgIds.join(',')]);
  }

  query: SqlQuery = async (sql, params) => {
    const runner = await this.runner();
    const result = this.pending.then(() => runner.query(sql, params));
    this.pending = result.catch(() => undefined);
    try {
      return rowsOf(await result);
    } catch (error) {
      if (this.depth === 0) this.broken = true;
      throw error;
    }
  };

  /** Runs fn in a savepoint: on error everything it wrote is undone and the error rethrown. */
  async savepoint<T>(fn: () => Promise<T>): Promise<T> {
    const name = `sp_${++this.savepoints}`;
    await this.query(`SAVEPOINT ${name}`);
    this.depth += 1;
    let result: T;
    try {
      result = await fn();
    } catch (error) {
      await this.query(`ROLLBACK TO SAVEPOINT ${name}`);
      this.depth -= 1;
      await this.query(`RELEASE SAVEPOINT ${name}`);
      throw error;
    }
    this.depth -= 1;
    await this.query(`RELEASE SAVEPOINT ${name}`);
    if (this.depth === 0) this.wrote = true;
    return result;
  }

  /**
   * Ends the request's transaction. When a statement failed outside any savepoint, PostgreSQL
   * has aborted the transaction and would silently turn COMMIT into ROLLBACK: if a mutation had
   * written in it, that is reported (throws) so the response cannot claim a change that was lost.
   */
  async finish(commit = true): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    if (!this.opening) return;
    try {
      const runner = await this.opening.catch(() => undefined);
      if (!runner) return;
      await this.pending;
      if (runner.isTransactionActive) {
        if (this.broken) {
          await runner.rollbackTransaction();
          if (this.wrote) throw new Error('the request transaction was aborted after a mutation wrote: its changes were rolled back');
        } else if (commit) {
          try {
            await runner.commitTransaction();
          } catch (error) {
            await runner.rollbackTransaction().catch(() => undefined);
            throw error;
          }
        } else await runner.rollbackTransaction();
      }
    } finally {
      await this.lease?.done();
    }
  }
}
