import { Client } from 'pg';
import type { QueryRunner } from 'typeorm';
import type { Database } from '../../src/database/database';

/**
 * Reading the database behind the service's back, to assert what was (or was not) written.
 *
 * Tenant tables have FORCE ROW LEVEL SECURITY: even their owner is subject to the policies and,
 * without `app.org_ids`, sees no row at all. A count read through such a role is always zero, so
 * "nothing was written" would pass whatever the service did. These helpers therefore insist on a
 * role that sees every row (superuser or BYPASSRLS) and throw when the connection has any other.
 */

/** Throws unless the connection's current role bypasses row-level security. */
export async function assertSeesEveryRow(runner: QueryRunner): Promise<void> {
  const rows: Array<{ role: string; bypass: boolean | null }> = await runner.query(
    `SELECT current_user AS role, (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) AS bypass`,
  );
  const row = rows[0];
  if (row?.bypass !== true) {
    throw new Error(
      `readAll: role '${row?.role ?? '?'}' is subject to row-level security (neither superuser nor BYPASSRLS); ` +
        'a count read through it can be vacuously zero. Connect the tests as a superuser or a BYPASSRLS role.',
    );
  }
}

type Target = Database | { db: Database };
const databaseOf = (target: Target): Database => ('db' in target ? target.db : target);

/** Runs fn on a dedicated connection after checking that it sees every row. */
export async function withAllRows<T>(target: Target, fn: (runner: QueryRunner) => Promise<T>): Promise<T> {
  return databaseOf(target).withConnection(async (runner) => {
    await assertSeesEveryRow(runner);
    return fn(runner);
  });
}

/** withAllRows inside a transaction that is always rolled back: what fn changes (settings, roles, DDL) is undone. */
export function inRollback<T>(target: Target, fn: (runner: QueryRunner) => Promise<T>): Promise<T> {
  return withAllRows(target, async (runner) => {
    await runner.startTransaction();
    try {
      return await fn(runner);
    } finally {
      await runner.rollbackTransaction();
    }
  });
}

/** One query on a connection that sees every row (see withAllRows): the way to count or prove absence. */
export function readAll<T = Record<string, any>>(target: Target, text: string, params: unknown[] = []): Promise<T[]> {
  return withAllRows(target, (runner) => runner.query(text, params));
}

/** readAll on a connection the caller already holds (checked the same way). */
export async function readAllOn<T = Record<string, any>>(runner: QueryRunner, text: string, params: unknown[] = []): Promise<T[]> {
  await assertSeesEveryRow(runner);
  return runner.query(text, params);
}

/** A connection of the test's own (superuser) to the app's database, outside the service's pool (PostgreSQL only). */
export async function sideConnection(app: { db: Database }, applicationName: string): Promise<Client> {
  const client = new Client({ connectionString: (app.db.dataSource.options as { url: string }).url, application_name: applicationName });
  await client.connect();
  return client;
}

/** Waits (bounded) until `count` of the service's sessions (or of the connections named `applications`) wait on a lock, seen from a side connection. */
export async function untilWaitingOnLocks(client: Client, count: number, applications: readonly string[] = ['tenant-service']): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows } = await client.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = ANY($1) AND wait_event_type = 'Lock'`,
      [applications],
    );
    if (rows[0].n >= count) return;
    if (Date.now() > deadline) throw new Error(`expected ${count} sessions of ${applications.join(', ')} waiting on a lock, saw ${rows[0].n}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
