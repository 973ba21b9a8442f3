import { type AppServices, RequestContext } from '../context';
import { ANONYMOUS } from '../auth/principal';
import { TenantTransaction } from '../database/tenant-transaction';

/**
 * One kind of due work. `dueFunction` names a SECURITY DEFINER SQL function `(p_limit integer)
 * RETURNS SETOF uuid` answering which organizations have due work of this kind (compared with the
 * database's `now()`), owned by a role that reads only the due-time columns. `run` does the work
 * of one organization, in a transaction of its own with the system principal: it claims its rows
 * with `FOR UPDATE SKIP LOCKED`, re-checks that they are still due, and returns how many units it
 * did (0 when another instance has them or did them already).
 */
export interface JobKind {
  kind: string;
  dueFunction: string;
  run(ctx: RequestContext): Promise<number>;
}

/**
 * Housekeeping of a global infrastructure table (no organization, no principal): `sweepFunction`
 * names a SECURITY DEFINER SQL function `() RETURNS integer` that deletes what has expired
 * (compared with the database's `now()`) and answers how many rows it removed. Idempotent, so
 * several instances may run it at once.
 */
export interface SweepKind {
  kind: string;
  sweepFunction: string;
}

/** Organizations looked at per kind and run (the rest waits for the next run). */
const BATCH = 500;

/**
 * The one scheduler of background jobs (SPEC §1): every JOB_INTERVAL_SECONDS it asks each job
 * kind for due organizations and runs each unit of work in its own transaction. Safe with any
 * number of instances on one database: the claim is in the database (row locks skipped when
 * taken, due conditions re-checked under the lock), never in memory.
 */
export class Scheduler {
  private readonly kinds: JobKind[] = [];
  private readonly sweeps: SweepKind[] = [];
  private timer?: NodeJS.Timeout;
  private running?: Promise<Record<string, number>>;
  private stopped = false;

  constructor(private readonly app: AppServices) {}

  /** Adds a kind of due work (the billing jobs, invitation expiry, the purge of deleted organizations…). */
  register(...kinds: JobKind[]): this {
    for (const kind of kinds) {
      if (this.kinds.some((k) => k.kind === kind.kind)) throw new Error(`job kind ${kind.kind} registered twice`);
      this.kinds.push(kind);
    }
    return this;
  }

  /** Adds housekeeping of a global table (the rate-limit counters' past minutes…), run after the due work of each pass. */
  registerSweep(...sweeps: SweepKind[]): this {
    for (const sweep of sweeps) {
      if (this.registered.includes(sweep.kind)) throw new Error(`job kind ${sweep.kind} registered twice`);
      this.sweeps.push(sweep);
    }
    return this;
  }

  get registered(): readonly string[] {
    return [...this.kinds.map((k) => k.kind), ...this.sweeps.map((s) => s.kind)];
  }

  /** Runs every JOB_INTERVAL_SECONDS (the first run one interval after start). */
  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => void this.tick(), this.app.config.jobIntervalSeconds * 1000);
    this.timer.unref();
  }

  /** Stops the timer and waits for the run in progress (before the database closes). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  private async tick(): Promise<void> {
    if (this.running) return;
    try {
      await this.runOnce();
    } catch (error) {
      this.app.logger.error({ err: error }, 'background jobs: run failed');
    }
  }

  /** One pass over all due work; answers how many units of each kind this instance did. */
  runOnce(): Promise<Record<string, number>> {
    if (this.running) return this.running;
    const run = this.pass().finally(() => {
      this.running = undefined;
    });
    this.running = run;
    return run;
  }

  private async pass(): Promise<Record<string, number>> {
    const done: Record<string, number> = {};
    for (const kind of this.kinds) {
      done[kind.kind] = 0;
      if (this.stopped) break;
      const due = await TenantTransaction.run(this.app.db, ANONYMOUS, `jobs:scan:${kind.kind}`, (tx) =>
        tx.query<{ id: string }>(`SELECT id FROM ${kind.dueFunction}($1) AS id`, [BATCH]),
      );
      for (const { id } of due) {
        try {
          done[kind.kind] += await this.unit(kind, id);
        } catch (error) {
          this.app.logger.error({ err: error, job: kind.kind, organizationId: id }, 'background job failed for one organization');
        }
      }
    }
    for (const sweep of this.sweeps) {
      if (this.stopped) break;
      try {
        const [row] = await TenantTransaction.run(this.app.db, ANONYMOUS, `jobs:sweep:${sweep.kind}`, (tx) => tx.query<{ n: number }>(`SELECT ${sweep.sweepFunction}() AS n`));
        done[sweep.kind] = Number(row?.n ?? 0);
      } catch (error) {
        this.app.logger.error({ err: error, job: sweep.kind }, 'background sweep failed');
      }
    }
    const total = Object.values(done).reduce((a, b) => a + b, 0);
    if (total > 0) this.app.logger.info({ jobs: done }, 'background jobs: due work done');
    return done;
  }

  /** One organization's work of one kind, in its own transaction with the system principal. */
  private async unit(kind: JobKind, organizationId: string): Promise<number> {
    const ctx = RequestContext.forSystem(this.app, organizationId, `job:${kind.kind}`);
    try {
      const n = await ctx.mutate(() => kind.run(ctx));
      await ctx.tx.finish(true);
      return n;
    } catch (error) {
      await ctx.tx.finish(false).catch(() => undefined);
      throw error;
    }
  }
}
