import type { QueryRunner } from 'typeorm';
import type { ApiKeyIdentity, Principal, Viewer } from '../auth/principal';
import { UnauthenticatedError } from '../common/errors';
import type { AheadStatement, Database, StatementSender } from './database';

export type SqlQuery = <T = Record<string, unknown>>(sql: string, params?: unknown[]) => Promise<T[]>;

/** TypeORM answers UPDATE/DELETE … RETURNING with [rows, affected]; every caller here wants the rows. */
function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result) && result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number') return result[0] as T[];
  return result as T[];
}

/** Sets the scope the policies read (the SQL function is the one place that sets it). */
const SET_SCOPE = `SELECT app_set_scope($1, $2, $3)`;

/** The role key under which an API key's one organization appears in `Session.roles` (no role key can take this form). */
export const API_KEY_ROLE = '@api_key';

/** What opening a transaction for a principal resolved: the user (for a user principal) or the API key, and its organizations. */
export interface Session {
  viewer: Viewer | null;
  /** The authenticated API key of an `apiKey` principal (null otherwise). */
  apiKey: ApiKeyIdentity | null;
  /** organization id → role key; live: it follows the scope as it widens, narrows and rolls back. */
  roles: ReadonlyMap<string, string>;
}

/** Raised for a statement sent after the unit of work ended (a resolver still running after the response). */
export class TransactionEndedError extends Error {
  constructor() {
    super('the transaction of this unit of work has already ended');
    this.name = 'TransactionEndedError';
  }
}

/**
 * Opens the session, and tells whether that wrote (a transaction id assigned: the user provisioned,
 * or its name or email refreshed from the token). The sub-select (OFFSET 0: never flattened) runs
 * app_open_session before the outer list asks.
 */
const OPEN_SESSION = `SELECT s, pg_current_xact_id_if_assigned() IS NOT NULL AS wrote FROM (SELECT app_open_session($1, $2::jsonb) AS s OFFSET 0) opened`;

interface OpenResult {
  user?: { id: string; email: string; email_verified: boolean; name: string | null; created: boolean };
  /** The principal's organizations (a user's memberships), comma-separated UUIDs; empty when none. */
  organizations: string;
  /** Their role keys, in the same order (role keys have no `,`). */
  roles: string;
  /** For an `apiKey` principal: the key, or null when it does not authenticate (revoked, expired, unknown, organization gone). */
  apiKey?: { id: string; organizationId: string; name: string; scopes: string[] } | null;
}

/**
 * The principal's organizations and role keys, from the bootstrap's two lists (`id,id…` and
 * `role,role…` in the same order), split into the map only when the whole set is wanted (a list
 * of one's organizations, a change of scope): a request about one organization looks its role up
 * in the text. A user of 200 organizations otherwise paid for 200 entries on every request.
 */
export class ScopeRoles extends Map<string, string> {
  private organizations: string | null = null;
  private roles = '';

  /** Takes the bootstrap's lists (a user's memberships), added to what the map holds. */
  adopt(organizations: string, roles: string): void {
    this.whole();
    this.organizations = organizations;
    this.roles = roles;
  }

  private whole(): void {
    const organizations = this.organizations;
    if (organizations !== null) {
      this.organizations = null;
      const roles = this.roles.split(',');
      organizations.split(',').forEach((id, i) => {
        // Lists of unequal length (never from the function: both columns are NOT NULL) grant nothing beyond the shorter.
        if (roles[i]) super.set(id, roles[i]);
      });
    }
  }

  /** The role in the lists: an id is 36 characters, so the n-th one starts at n × 37; its role is the n-th key. */
  private find(organizationId: string): string | undefined {
    const organizations = this.organizations!;
    if (organizationId.length !== 36) return undefined;
    for (let at = organizations.indexOf(organizationId); at >= 0; at = organizations.indexOf(organizationId, at + 1)) {
      if (at % 37 !== 0) continue;
      let start = 0;
      for (let n = at / 37; n > 0; n--) {
        const comma = this.roles.indexOf(',', start);
        if (comma < 0) return undefined;
        start = comma + 1;
      }
      const end = this.roles.indexOf(',', start);
      return this.roles.slice(start, end < 0 ? undefined : end) || undefined;
    }
    return undefined;
  }

  override get(organizationId: string): string | undefined {
    // The lists came last (adopt): they win over what was set before them.
    return (this.organizations === null ? undefined : this.find(organizationId)) ?? super.get(organizationId);
  }
  override has(organizationId: string): boolean {
    return this.get(organizationId) !== undefined;
  }
  override set(organizationId: string, roleKey: string): this {
    this.whole();
    return super.set(organizationId, roleKey);
  }
  override delete(organizationId: string): boolean {
    this.whole();
    return super.delete(organizationId);
  }
  override clear(): void {
    this.organizations = null;
    super.clear();
  }
  override get size(): number {
    this.whole();
    return super.size;
  }
  override keys(): MapIterator<string> {
    this.whole();
    return super.keys();
  }
  override values(): MapIterator<string> {
    this.whole();
    return super.values();
  }
  override entries(): MapIterator<[string, string]> {
    this.whole();
    return super.entries();
  }
  override forEach(fn: (value: string, key: string, map: Map<string, string>) => void, thisArg?: unknown): void {
    this.whole();
    super.forEach(fn, thisArg);
  }
  override [Symbol.iterator](): MapIterator<[string, string]> {
    return this.entries();
  }
}

/**
 * The one transaction class: a request's, a job's or a webhook's unit of work, for one principal.
 *
 * It leases a connection and opens lazily, on the first statement, with one round trip
 * (`app_open_session`): the switch to the service's non-owner role, the just-in-time
 * provisioning of a user principal, its memberships, and the row-level-security scope. Opening
 * resolves the `Session` (viewer and organizations) for the layers above; nothing here calls back
 * up. Every statement — COMMIT and ROLLBACK included — goes through one queue, one after
 * another on the leased connection, and a statement sent after the end is refused at once.
 *
 * `savepoint` runs a mutation so that a failure leaves no partial write and no audit event; the
 * in-memory scope (organizations and roles) rolls back with it. `commit` ends the current
 * transaction while keeping the connection: the next statement begins a new one with the same
 * scope (a mutation commits before its selection set resolves, so its locks are held no longer
 * than its own work).
 */
export class TenantTransaction {
  /** Statements sent so far (the N+1 tests and the request log read it). */
  queryCount = 0;
  private readonly scopeRoles = new ScopeRoles();
  /**
   * The scope as of the last successful COMMIT (or the opening), what a failed COMMIT falls back
   * to; taken only when the scope first changes after it (undefined: unchanged since).
   */
  private committedScope?: ReadonlyMap<string, string>;
  private userId: string | null = null;
  private session?: Session;
  private openError?: unknown;
  private lease?: { runner: QueryRunner; done: () => Promise<void> };
  private sender?: StatementSender;
  /** Inside BEGIN … COMMIT on the leased connection. */
  private active = false;
  private ended = false;
  /** Settles once every statement queued so far has been answered (or failed). */
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * Settles once the last statement queued has been handed to the driver. Where the database
   * pipelines, a read goes out as soon as the one before it has gone out, without waiting for
   * its answer (PostgreSQL answers in order): sibling loaders of one level of a query share a
   * round trip. Everything else (BEGIN, COMMIT, scope changes, recovery) waits for every answer.
   */
  private handedOver: Promise<unknown> = Promise.resolve();
  private savepoints = 0;
  /** Open savepoints. A statement failing at depth 0 has aborted the whole transaction. */
  private depth = 0;
  private broken = false;
  /** A mutation's savepoint was released into the current transaction: there are writes to lose. */
  private wrote = false;
  /** The session's opening wrote (a user provisioned, or its name or email refreshed from the token): its COMMIT is never deferred. */
  private openingWrote = false;
  /** The statement to send just before BEGIN (TenantTransaction.ahead), until the transaction begins. */
  private aheadOfBegin?: AheadStatement;
  /** Whether opening was ever attempted: from then on nothing can go ahead of it. */
  private beginAttempted = false;

  constructor(
    private readonly db: Database,
    readonly principal: Principal,
    readonly requestId: string,
  ) {}

  get isOpen(): boolean {
    return this.session !== undefined;
  }

  /** Opens the transaction (once) and resolves who it acts for. */
  open(): Promise<Session> {
    return this.enqueue(async () => this.session!);
  }

  /**
   * Sends `sql` on this unit of work's connection just before its BEGIN — in the same socket
   * write on PostgreSQL — as a statement of its own outside the transaction: it commits at once,
   * holds no lock for the length of the request and never rolls back with it (the rate-limit
   * counter). Only before the transaction first tries to open, and only where the database
   * pipelines; null otherwise (the caller then sends it some other way). It is settled exactly
   * once: with its rows, its error, or the error that kept the transaction from opening. It runs
   * as the connection's login role, before the transaction switches to the service's role: only
   * for SECURITY DEFINER functions of the service itself that the login role may execute.
   */
  ahead<T>(sql: string, params: unknown[]): Promise<T[]> | null {
    if (!this.db.pipelines || this.beginAttempted || this.ended || this.aheadOfBegin) return null;
    return new Promise<T[]>((resolve, reject) => {
      let done = false;
      this.aheadOfBegin = {
        sql,
        params,
        settle: (outcome) => {
          if (done) return;
          done = true;
          if ('error' in outcome) reject(outcome.error);
          else resolve(outcome.rows as T[]);
        },
      };
    });
  }

  query: SqlQuery = <T>(sql: string, params?: unknown[]): Promise<T[]> => this.queued<T>(sql, params, false);

  /**
   * `query` for a read (a request's loaders): when it is the statement that opens the transaction,
   * it follows BEGIN and the session in the same socket write, without waiting for their answer
   * (PostgreSQL runs it after them, inside the transaction, scoped). Only for a user: an API key is
   * authenticated from the session's answer, and nothing may run before that; and only a read, so
   * that nothing is written should the opening message ever fail before its BEGIN.
   */
  read: SqlQuery = <T>(sql: string, params?: unknown[]): Promise<T[]> => this.queued<T>(sql, params, this.principal.kind === 'user');

  private queued<T>(sql: string, params: unknown[] | undefined, mayFollowBegin: boolean): Promise<T[]> {
    if (!this.db.pipelines) return this.enqueue(async (runner) => this.answer<T>(this.send(runner, sql, params)));
    if (this.ended) return Promise.reject(new TransactionEndedError());
    let handOver!: () => void;
    const handed = new Promise<void>((resolve) => (handOver = resolve));
    const run = this.handedOver.then(async () => {
      let answer: Promise<unknown> | undefined;
      // Should the opening fail, the followed statement's own error (an aborted transaction) comes
      // while the opening rolls back and adds nothing: handled from the start, the opening's error is the answer.
      const follow = (runner: QueryRunner) => {
        answer = this.send(runner, sql, params);
        answer.catch(() => undefined);
      };
      try {
        const runner = await this.begin(mayFollowBegin ? follow : undefined);
        answer ??= this.send(runner, sql, params);
      } finally {
        handOver();
      }
      return this.answer<T>(answer);
    });
    this.handedOver = handed;
    // Settles with nothing: the chain must not hold on to the rows of every statement (an export streams millions).
    const answered = run.then(
      () => undefined,
      () => undefined,
    );
    this.queue = this.queue.then(() => answered);
    return run;
  }

  /** A statement's rows; a failure outside any savepoint has aborted the transaction. */
  private async answer<T>(pending: Promise<unknown>): Promise<T[]> {
    try {
      return rowsOf<T>(await pending);
    } catch (error) {
      if (this.depth === 0) this.broken = true;
      throw error;
    }
  }

  /** Runs fn in a savepoint: on error everything it wrote (and every widening of the scope) is undone and the error rethrown. */
  async savepoint<T>(fn: () => Promise<T>): Promise<T> {
    if (this.depth === 0) await this.recover();
    const name = `sp_${++this.savepoints}`;
    const before = new Map(this.scopeRoles);
    await this.query(`SAVEPOINT ${name}`);
    this.depth += 1;
    let result: T;
    try {
      result = await fn();
    } catch (error) {
      this.depth -= 1;
      this.restoreScope(before);
      await this.query(`ROLLBACK TO SAVEPOINT ${name}`);
      await this.query(`RELEASE SAVEPOINT ${name}`);
      throw error;
    }
    this.depth -= 1;
    await this.query(`RELEASE SAVEPOINT ${name}`);
    if (this.depth === 0) this.wrote = true;
    return result;
  }

  /**
   * Commits what was done so far and keeps the connection; the next statement begins a new
   * transaction with the same scope. A failed COMMIT has ended the transaction all the same
   * (PostgreSQL rolled it back): the next statement begins anew, and the in-memory scope falls
   * back to what was last committed.
   */
  commit(): Promise<void> {
    return this.enqueue(async (runner) => {
      if (this.broken) throw new Error('the transaction was aborted by a failed statement; nothing can be committed');
      this.active = false;
      this.wrote = false;
      try {
        await this.send(runner, 'COMMIT');
      } catch (error) {
        if (this.committedScope) this.restoreScope(this.committedScope);
        this.committedScope = undefined;
        throw error;
      }
      this.committedScope = undefined;
    });
  }

  /**
   * A read that failed outside any savepoint aborted the transaction; when nothing uncommitted
   * was written in it, it is simply rolled back, so that the next mutation of the request
   * starts afresh instead of failing on an aborted transaction.
   */
  private recover(): Promise<void> {
    return this.enqueue(async (runner) => {
      if (!this.broken || this.wrote || !this.active) return;
      this.active = false;
      this.broken = false;
      await this.send(runner, 'ROLLBACK');
    });
  }

  /** The principal now belongs to an organization (it created or joined it): the policies let it in. */
  async widen(organizationId: string, roleKey: string): Promise<void> {
    this.committedScope ??= new Map(this.scopeRoles);
    this.scopeRoles.set(organizationId, roleKey);
    await this.applyScope();
  }

  /** The principal no longer belongs to an organization (it left it). */
  async narrow(organizationId: string): Promise<void> {
    if (!this.scopeRoles.has(organizationId)) return;
    this.committedScope ??= new Map(this.scopeRoles);
    this.scopeRoles.delete(organizationId);
    await this.applyScope();
  }

  private applyScope(): Promise<void> {
    return this.enqueue(async (runner) => {
      await this.send(runner, SET_SCOPE, this.scopeArguments());
    });
  }

  /**
   * What app_set_scope needs: the request, the user, and the organizations the policies let this
   * principal into (a user's memberships, or a system principal's one organization).
   */
  private scopeArguments(): [string, string | null, string] {
    // An API key's one organization is its scope role (set when the transaction opened).
    const organizations = this.principal.kind === 'system' ? this.principal.organizationId : [...this.scopeRoles.keys()].join(',');
    return [this.requestId, this.userId, organizations];
  }

  /** ROLLBACK TO SAVEPOINT undoes the settings in the database; the in-memory scope follows. */
  private restoreScope(snapshot: ReadonlyMap<string, string>): void {
    this.scopeRoles.clear();
    for (const [k, v] of snapshot) this.scopeRoles.set(k, v);
  }

  /**
   * Ends the unit of work. When a statement failed outside any savepoint, PostgreSQL has aborted
   * the transaction and would silently turn COMMIT into ROLLBACK: if a mutation had written in it
   * (a savepoint released since the last commit), that is reported (throws) so the response cannot
   * claim a change that was lost. A transaction that only read has nothing to lose.
   *
   * `deferrable`: the unit of work answered a GraphQL query. When it wrote nothing (no savepoint
   * released, nothing written by its opening), its COMMIT does not cost a socket write and
   * a wait of its own: it leaves with the connection's next statement, or shortly after on its own
   * (StatementSender.deferCommit, DB_COMMIT_DEFER_MS). A mutation's COMMIT is always awaited before
   * the response, as is every unit of work of the service's own (jobs, webhooks).
   */
  async finish(commit = true, { deferrable = false }: { deferrable?: boolean } = {}): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.aheadOfBegin?.settle({ error: new TransactionEndedError() });
    this.aheadOfBegin = undefined;
    const last = this.queue.then(async () => {
      try {
        if (!this.active || !this.lease) return;
        this.active = false;
        const { runner } = this.lease;
        if (this.broken) {
          await this.send(runner, 'ROLLBACK');
          if (this.wrote) throw new Error('the transaction was aborted after a mutation wrote: its changes were rolled back');
        } else if (commit && deferrable && !this.wrote && !this.openingWrote && this.sender?.deferCommit?.()) {
          this.queryCount += 1;
        } else if (commit) {
          try {
            await this.send(runner, 'COMMIT');
          } catch (error) {
            await this.send(runner, 'ROLLBACK').catch(() => undefined);
            // Only writes not yet committed can be lost; a transaction that only read lost nothing.
            if (this.wrote) throw error;
          }
        } else await this.send(runner, 'ROLLBACK');
      } finally {
        await this.lease?.done();
      }
    });
    this.queue = last.catch(() => undefined);
    await last;
  }

  /** Appends work to the connection's queue (synchronously, so order is the order of calls), beginning a transaction first when none is active. */
  private enqueue<T>(work: (runner: QueryRunner) => Promise<T>): Promise<T> {
    if (this.ended) return Promise.reject(new TransactionEndedError());
    // Work queued before the end still runs, ahead of the COMMIT that finish() queues after it.
    const run = this.queue.then(async () => work(await this.begin()));
    this.queue = run.catch(() => undefined);
    this.handedOver = this.queue;
    return run;
  }

  private async send(runner: QueryRunner, sql: string, params?: unknown[]): Promise<unknown> {
    this.queryCount += 1;
    this.sender ??= this.db.statementSender(runner);
    return this.sender.send(sql, params);
  }

  /**
   * Begins the transaction unless it is active. `follow`, when the opening itself happens here,
   * sends the caller's statement right behind it without waiting for its answer (see
   * StatementSender.beginWith); otherwise it is not called.
   */
  private async begin(follow?: (runner: QueryRunner) => void): Promise<QueryRunner> {
    // Whatever happens next, a statement waiting to go ahead of BEGIN goes with it or is settled here.
    const ahead = this.aheadOfBegin;
    this.aheadOfBegin = undefined;
    this.beginAttempted = true;
    if (this.openError) {
      ahead?.settle({ error: this.openError });
      throw this.openError;
    }
    if (this.active) return this.lease!.runner;
    try {
      this.lease ??= await this.db.lease();
      const { runner } = this.lease;
      this.sender ??= this.db.statementSender(runner);
      // From here a failure rolls back, whether or not BEGIN got through.
      this.active = true;
      this.broken = false;
      this.queryCount += 2;
      if (!this.session) {
        const [row] = rowsOf<{ s: OpenResult; wrote: boolean }>(
          await this.sender.beginWith(OPEN_SESSION, [this.requestId, JSON.stringify(this.describe())], ahead, follow && (() => follow(runner))),
        );
        this.openingWrote = row!.wrote === true;
        this.resolve(row!.s);
      } else {
        await this.sender.beginWith(SET_SCOPE, this.scopeArguments(), ahead);
      }
      return runner;
    } catch (error) {
      ahead?.settle({ error });
      // Never hand a connection back to the pool in the middle of a transaction.
      if (this.active) await this.lease?.runner.query('ROLLBACK').catch(() => undefined);
      this.active = false;
      if (!this.session) {
        this.openError = error;
        await this.lease?.done();
      }
      throw error;
    }
  }

  /** What the database needs to know of the principal to open its transaction. */
  private describe(): Record<string, unknown> {
    const p = this.principal;
    switch (p.kind) {
      case 'user':
        return { kind: 'user', subject: p.identity.subject, email: p.identity.email, emailVerified: p.identity.emailVerified, name: p.identity.name, picture: p.identity.picture };
      case 'system':
        return { kind: 'system', organizationId: p.organizationId };
      case 'apiKey':
        return p.credential.via === 'secret' ? { kind: 'apiKey', hash: p.credential.hash } : { kind: 'apiKey', id: p.credential.keyId };
      case 'anonymous':
        return { kind: 'anonymous' };
    }
  }

  private resolve(result: OpenResult): void {
    let apiKey: ApiKeyIdentity | null = null;
    if (this.principal.kind === 'apiKey') {
      // The key is authenticated here, on every request: nothing of the unit of work runs without it.
      if (!result.apiKey) throw new UnauthenticatedError('Invalid, revoked or expired API key', 401);
      apiKey = Object.freeze({ ...result.apiKey, scopes: Object.freeze([...result.apiKey.scopes]), via: this.principal.credential.via });
      this.scopeRoles.set(apiKey.organizationId, API_KEY_ROLE);
    }
    if (result.organizations) this.scopeRoles.adopt(result.organizations, result.roles);
    const user = result.user;
    this.userId = user?.id ?? null;
    this.session = {
      viewer: user ? { userId: user.id, email: user.email, name: user.name, emailVerified: user.email_verified, created: user.created } : null,
      apiKey,
      roles: this.scopeRoles,
    };
  }

  /** Runs fn in a transaction of its own for the principal and commits it (jobs, webhooks, short counters). */
  static async run<T>(db: Database, principal: Principal, requestId: string, fn: (tx: TenantTransaction) => Promise<T>): Promise<T> {
    const tx = new TenantTransaction(db, principal, requestId);
    let result: T;
    try {
      result = await fn(tx);
    } catch (error) {
      await tx.finish(false).catch(() => undefined);
      throw error;
    }
    await tx.finish(true);
    return result;
  }
}
