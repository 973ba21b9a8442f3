import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { systemPrincipal } from '../../../src/auth/principal';
import { AUDIT_PRUNER_ROLE, APP_ROLE } from '../../../src/database/roles';
import { TenantTransaction } from '../../../src/database/tenant-transaction';
import { createScheduler } from '../../../src/jobs/jobs';
import type { Scheduler } from '../../../src/jobs/scheduler';
import { AUDIT_RETENTION_BATCH } from '../../../src/modules/audit/audit.retention';
import { startTestApp, type TestApp } from '../../helpers/app';
import { readAll, withAllRows } from '../../helpers/db';
import { createOrganization, type CreatedOrganization, uniqueEmail } from '../../helpers/factories';

/**
 * SPEC §5 Audit: a job prunes events older than the plan's auditRetentionDays. Time is moved in
 * the database: events are written with `occurred_at` relative to its now(), and the scheduler's
 * pass compares with the same clock. FREE keeps 7 days, PRO 90, BUSINESS 365, ENTERPRISE forever.
 */
let app: TestApp;
let scheduler: Scheduler;
beforeAll(async () => {
  app = await startTestApp();
  scheduler = createScheduler({ config: app.config, db: app.db, envelope: app.envelope, logger: pino({ level: 'silent' }) });
});
afterAll(async () => {
  await scheduler?.stop();
  await app?.close();
});

/** An organization on a plan (set in the database, as billing would leave it), with nothing in its trail. */
async function organizationOn(plan: string): Promise<CreatedOrganization> {
  const org = await createOrganization(app, uniqueEmail(plan.toLowerCase()));
  await readAll(app, `UPDATE subscriptions SET plan_key = $2, status = 'ACTIVE' WHERE organization_id = $1`, [org.id, plan]);
  await readAll(app, `DELETE FROM audit_events WHERE organization_id = $1`, [org.id]);
  return org;
}

/** `count` events `ageDays` old (± a minute) by the database's clock, named `label`. */
const write = (org: CreatedOrganization, ageDays: number, label: string, count = 1, offsetMinutes = 0) =>
  readAll(
    app,
    `INSERT INTO audit_events (organization_id, occurred_at, action, actor_type, resource_type, resource_name)
     SELECT $1, now() - make_interval(days => $2) + make_interval(mins => $3) - g * interval '1 millisecond', 'workspace.updated', 'SYSTEM', 'workspace', $4
     FROM generate_series(1, $5::int) g`,
    [org.id, ageDays, offsetMinutes, label, count],
  );

const names = async (org: CreatedOrganization) =>
  (await readAll<{ resource_name: string }>(app, `SELECT DISTINCT resource_name FROM audit_events WHERE organization_id = $1 ORDER BY 1`, [org.id])).map((r) => r.resource_name);
const count = async (org: CreatedOrganization) => (await readAll<{ n: number }>(app, `SELECT count(*)::int AS n FROM audit_events WHERE organization_id = $1`, [org.id]))[0]!.n;

describe('the audit_retention job', () => {
  it("deletes exactly the events older than each organization's plan keeps, and nothing else; a second run does nothing", async () => {
    const plans: Array<[string, number | null]> = [['FREE', 7], ['PRO', 90], ['BUSINESS', 365], ['ENTERPRISE', null]];
    const orgs = new Map<string, CreatedOrganization>();
    for (const [plan, days] of plans) {
      const org = await organizationOn(plan);
      orgs.set(plan, org);
      const keep = days ?? 3650;
      await write(org, keep, 'just-kept', 1, 5);
      await write(org, keep, 'just-expired', 2, -5);
      await write(org, 1, 'recent', 3);
      await write(org, 4000, 'ancient', 2);
    }
    const run = await scheduler.runOnce();
    // FREE, PRO, BUSINESS: 2 just expired + 2 ancient each; ENTERPRISE keeps everything.
    expect(run.audit_retention).toBe(12);
    for (const [plan] of plans.slice(0, 3)) expect(await names(orgs.get(plan)!)).toEqual(['just-kept', 'recent']);
    expect(await names(orgs.get('ENTERPRISE')!)).toEqual(['ancient', 'just-expired', 'just-kept', 'recent']);
    expect((await scheduler.runOnce()).audit_retention).toBe(0);
  });

  it('works in batches: a backlog larger than one batch drains over successive runs, oldest first', async () => {
    const org = await organizationOn('FREE');
    await write(org, 30, 'backlog', AUDIT_RETENTION_BATCH + 1500);
    await write(org, 2, 'fresh', 5);
    expect((await scheduler.runOnce()).audit_retention).toBe(AUDIT_RETENTION_BATCH);
    expect(await count(org)).toBe(1500 + 5);
    // Oldest first: what is left of the backlog is its newest part.
    const [left] = await readAll<{ oldest: string }>(app, `SELECT min(occurred_at) < now() - interval '29 days' AS oldest FROM audit_events WHERE organization_id = $1`, [org.id]);
    expect(left).toEqual({ oldest: true });
    expect((await scheduler.runOnce()).audit_retention).toBe(1500);
    expect(await names(org)).toEqual(['fresh']);
    expect((await scheduler.runOnce()).audit_retention).toBe(0);
  });

  it('follows the plan: a downgrade to FREE makes 30-day-old events expire at the next run', async () => {
    const org = await organizationOn('PRO');
    await write(org, 30, 'month-old', 4);
    expect((await scheduler.runOnce()).audit_retention).toBe(0);
    await readAll(app, `UPDATE subscriptions SET plan_key = 'FREE' WHERE organization_id = $1`, [org.id]);
    expect((await scheduler.runOnce()).audit_retention).toBe(4);
    expect(await count(org)).toBe(0);
  });
});

describe('who may delete audit events', () => {
  const asService = (organizationId: string, sql: string, params: unknown[] = []) =>
    TenantTransaction.run(app.db, systemPrincipal(organizationId, 'test:retention'), randomUUID(), (tx) => tx.query(sql, params));

  it("the service's role cannot delete an audit event, not even an expired one of its own organization", async () => {
    const org = await organizationOn('FREE');
    await write(org, 30, 'expired', 2);
    await expect(asService(org.id, `DELETE FROM audit_events WHERE organization_id = $1`, [org.id])).rejects.toMatchObject({ code: '42501' });
    await expect(asService(org.id, `UPDATE audit_events SET action = 'x' WHERE organization_id = $1`, [org.id])).rejects.toMatchObject({ code: '42501' });
    expect(await count(org)).toBe(2);
  });

  it('the prune function, called for an organization outside the transaction scope, deletes nothing', async () => {
    const org = await organizationOn('FREE');
    const elsewhere = await organizationOn('FREE');
    await write(org, 30, 'expired', 3);
    const [row] = await asService(elsewhere.id, `SELECT app_prune_audit_events($1, 100) AS pruned`, [org.id]);
    expect(row).toEqual({ pruned: 0 });
    expect(await count(org)).toBe(3);
  });

  it('the pruner role itself may delete only expired events (a restrictive policy), only in scope', async () => {
    const org = await organizationOn('FREE');
    await write(org, 30, 'expired', 2);
    await write(org, 1, 'recent', 2);
    const deleted = await withAllRows(app, async (runner) => {
      await runner.query('BEGIN');
      try {
        await runner.query(`SELECT set_config('app.org_ids', $1, true)`, [org.id]);
        await runner.query(`SET LOCAL ROLE ${AUDIT_PRUNER_ROLE}`);
        const rows: unknown = await runner.query(`DELETE FROM audit_events WHERE organization_id = $1 RETURNING 1`, [org.id]);
        await runner.query('COMMIT');
        return rows;
      } catch (error) {
        await runner.query('ROLLBACK');
        throw error;
      }
    });
    expect((deleted as unknown[][])[0] ?? deleted).toHaveLength(2);
    expect(await names(org)).toEqual(['recent']);
  });

  it('the functions are SECURITY DEFINER with a pinned search_path, owned by a NOLOGIN role with no other rights', async () => {
    const functions = await readAll(
      app,
      `SELECT p.proname AS name, pg_get_userbyid(p.proowner) AS owner, p.proconfig AS config, p.prosecdef AS definer, has_function_privilege($1, p.oid, 'EXECUTE') AS callable
       FROM pg_proc p WHERE p.proname IN ('app_due_audit_retention', 'app_prune_audit_events') ORDER BY p.proname`,
      [APP_ROLE],
    );
    expect(functions).toEqual(
      ['app_due_audit_retention', 'app_prune_audit_events'].map((name) => ({ name, owner: AUDIT_PRUNER_ROLE, config: ['search_path=pg_catalog, pg_temp'], definer: true, callable: true })),
    );
    const [rights] = await readAll(
      app,
      `SELECT r.rolcanlogin AS login, r.rolsuper AS super, r.rolbypassrls AS bypass,
              has_column_privilege($1, 'audit_events', 'occurred_at', 'SELECT') AS times, has_column_privilege($1, 'audit_events', 'changes', 'SELECT') AS changes,
              has_column_privilege($1, 'audit_events', 'actor_email', 'SELECT') AS emails, has_table_privilege($1, 'audit_events', 'UPDATE') AS updates,
              has_table_privilege($1, 'audit_events', 'INSERT') AS inserts, has_table_privilege($1, 'organizations', 'SELECT') AS organizations,
              has_column_privilege($1, 'subscriptions', 'status', 'SELECT') AS status,
              has_table_privilege($2, 'audit_events', 'DELETE') AS service_deletes
       FROM pg_roles r WHERE r.rolname = $1`,
      [AUDIT_PRUNER_ROLE, APP_ROLE],
    );
    expect(rights).toEqual({ login: false, super: false, bypass: false, times: true, changes: false, emails: false, updates: false, inserts: false, organizations: false, status: false, service_deletes: false });
  });
});
