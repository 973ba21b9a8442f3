import pino from 'pino';
import type { AppServices } from '../../../src/context';
import { Database } from '../../../src/database/database';
import { JOB_SCAN_ROLE } from '../../../src/database/roles';
import { createScheduler } from '../../../src/jobs/jobs';
import type { Scheduler } from '../../../src/jobs/scheduler';
import { codes, ok, startTestApp, type TestApp, usesRealPostgres } from '../../helpers/app';
import { readAll } from '../../helpers/db';
import { createOrganization, uniqueEmail } from '../../helpers/factories';
import { CANCEL, CHANGE_PLAN, ORG_BILLING, setSubscription, subscriptionEvents, subscriptionRow } from './billing-helpers';

/**
 * The background jobs (SPEC §1, §5): due times live in the database and are compared with its
 * now(); the tests move a due column into the past and run the scheduler's pass, as an operator
 * would see it act at its next run. Two instances on one database do each unit exactly once.
 */

let app: TestApp;
let services: AppServices;
let scheduler: Scheduler;
beforeAll(async () => {
  app = await startTestApp();
  services = { config: app.config, db: app.db, envelope: app.envelope, logger: pino({ level: 'silent' }) };
  scheduler = createScheduler(services);
});
afterAll(async () => {
  await scheduler?.stop();
  await app?.close();
});

const DAY = 24 * 3600 * 1000;
const billing = async (organizationId: string, as: string) => ok(await app.gql(ORG_BILLING, { id: organizationId }, { as })).organization;

describe('the scheduler', () => {
  it('registers every kind of due work once', () => {
    expect(scheduler.registered).toEqual(['trial_end', 'period_end', 'archive', 'invitation_expiry', 'organization_purge', 'notification_digest', 'audit_retention', 'rate_limit_sweep']);
    expect(() => scheduler.register({ kind: 'trial_end', dueFunction: 'x', run: async () => 0 })).toThrow(/twice/);
  });

  it('ends a trial at trial_ends_at: FREE/ACTIVE, audited subscription.status_changed with the system actor; a second run does nothing', async () => {
    const owner = uniqueEmail('trial');
    const org = await createOrganization(app, owner);
    const bystander = await createOrganization(app, uniqueEmail('bystander'));
    expect((await scheduler.runOnce()).trial_end).toBe(0);
    await setSubscription(app, org.id, `trial_ends_at = now() - interval '1 second'`);
    expect((await scheduler.runOnce()).trial_end).toBe(1);
    const o = await billing(org.id, owner);
    expect(o.subscription).toMatchObject({ status: 'ACTIVE', plan: { key: 'FREE' }, scheduledPlan: null });
    expect(Date.parse(o.subscription.currentPeriodEnd)).toBeGreaterThan(Date.now() + 27 * DAY);
    const events = await subscriptionEvents(app, org.id);
    expect(events).toEqual([
      {
        action: 'subscription.status_changed',
        actor_type: 'SYSTEM',
        actor_name: 'job:trial_end',
        changes: { changedFields: ['plan', 'status'], oldValues: { plan: 'PRO', status: 'TRIALING' }, newValues: { plan: 'FREE', status: 'ACTIVE' } },
        metadata: { reason: 'trial_ended' },
      },
    ]);
    // Features follow: FREE has none.
    const flags = ok(await app.gql(`query($id: ID!) { organization(id: $id) { features { key enabled } } }`, { id: org.id }, { as: owner })).organization.features;
    expect(flags.filter((f: { enabled: boolean }) => f.enabled)).toEqual([]);
    expect((await scheduler.runOnce()).trial_end).toBe(0);
    expect(await subscriptionEvents(app, org.id)).toHaveLength(1);
    expect((await subscriptionRow(app, bystander.id)).status).toBe('TRIALING');
  });

  it('leaves a trial alone once a plan was chosen', async () => {
    const owner = uniqueEmail('chosen');
    const org = await createOrganization(app, owner);
    ok(await app.gql(CHANGE_PLAN, { org: org.id, plan: 'BUSINESS' }, { as: owner }));
    await setSubscription(app, org.id, `trial_ends_at = now() - interval '1 second'`);
    await scheduler.runOnce();
    expect((await subscriptionRow(app, org.id)).plan_key).toBe('BUSINESS');
  });

  it('applies a scheduled downgrade at the period end (plan_changed, system actor) and starts the next period', async () => {
    const owner = uniqueEmail('downgrade');
    const org = await createOrganization(app, owner);
    ok(await app.gql(CHANGE_PLAN, { org: org.id, plan: 'BUSINESS' }, { as: owner }));
    ok(await app.gql(CHANGE_PLAN, { org: org.id, plan: 'STARTER' }, { as: owner }));
    // Not due yet: nothing happens.
    expect((await scheduler.runOnce()).period_end).toBe(0);
    expect((await subscriptionRow(app, org.id)).plan_key).toBe('BUSINESS');
    await setSubscription(app, org.id, `current_period_start = now() - interval '2 months', current_period_end = now() - interval '1 second'`);
    expect((await scheduler.runOnce()).period_end).toBe(1);
    const s = (await billing(org.id, owner)).subscription;
    expect(s).toMatchObject({ status: 'ACTIVE', plan: { key: 'STARTER' }, scheduledPlan: null });
    expect(Date.parse(s.currentPeriodEnd)).toBeGreaterThan(Date.now() + 27 * DAY);
    const last = (await subscriptionEvents(app, org.id)).at(-1)!;
    expect(last).toMatchObject({ action: 'subscription.plan_changed', actor_type: 'SYSTEM', actor_name: 'job:period_end', metadata: { reason: 'scheduled_downgrade', plan: 'STARTER', previousPlan: 'BUSINESS' } });
  });

  it('renews a plain ACTIVE subscription at its period end without an audit event (no lifecycle transition)', async () => {
    const owner = uniqueEmail('renew');
    const org = await createOrganization(app, owner);
    ok(await app.gql(CHANGE_PLAN, { org: org.id, plan: 'PRO' }, { as: owner }));
    await setSubscription(app, org.id, `current_period_start = now() - interval '1 month', current_period_end = now() - interval '1 second'`);
    const before = await subscriptionEvents(app, org.id);
    expect((await scheduler.runOnce()).period_end).toBe(1);
    const row = await subscriptionRow(app, org.id);
    expect([row.status, row.plan_key]).toEqual(['ACTIVE', 'PRO']);
    expect(new Date(row.current_period_end).getTime()).toBeGreaterThan(Date.now() + 27 * DAY);
    expect(await subscriptionEvents(app, org.id)).toEqual(before);
  });

  it('expires a CANCELLING subscription at the period end, then archives it 30 days later; each transition audited once', async () => {
    const owner = uniqueEmail('lifecycle');
    const org = await createOrganization(app, owner);
    ok(await app.gql(CHANGE_PLAN, { org: org.id, plan: 'STARTER' }, { as: owner }));
    ok(await app.gql(CANCEL, { org: org.id }, { as: owner }));
    await setSubscription(app, org.id, `current_period_start = now() - interval '1 month', current_period_end = now() - interval '1 second'`);
    expect((await scheduler.runOnce()).period_end).toBe(1);
    const expired = await subscriptionRow(app, org.id);
    expect(expired.status).toBe('EXPIRED');
    expect(new Date(expired.archive_at).getTime() - new Date(expired.expired_at).getTime()).toBe(30 * DAY);
    // Read-only now.
    const write = await app.gql(`mutation($id: ID!) { updateOrganization(id: $id, input: { description: "x" }) { id } }`, { id: org.id }, { as: owner });
    expect(codes(write)).toEqual(['ORGANIZATION_INACTIVE']);
    expect((await scheduler.runOnce()).archive).toBe(0);
    await setSubscription(app, org.id, `archive_at = now() - interval '1 second'`);
    expect((await scheduler.runOnce()).archive).toBe(1);
    expect((await billing(org.id, owner)).subscription.status).toBe('ARCHIVED');
    expect((await scheduler.runOnce()).archive).toBe(0);
    const events = await subscriptionEvents(app, org.id);
    expect(events.map((e) => [e.action, e.actor_type, e.actor_name, e.changes?.newValues.status ?? null])).toEqual([
      ['subscription.plan_changed', 'USER', null, 'ACTIVE'],
      ['subscription.cancelled', 'USER', null, 'CANCELLING'],
      ['subscription.status_changed', 'SYSTEM', 'job:period_end', 'EXPIRED'],
      ['subscription.status_changed', 'SYSTEM', 'job:archive', 'ARCHIVED'],
    ]);
    // From ARCHIVED a chosen plan still brings it back.
    expect(ok(await app.gql(CHANGE_PLAN, { org: org.id, plan: 'FREE' }, { as: owner })).changePlan.status).toBe('ACTIVE');
  });

  it('expires PENDING invitations past expires_at (the stored status becomes EXPIRED)', async () => {
    const owner = uniqueEmail('invites');
    const org = await createOrganization(app, owner);
    const invite = async (email: string) =>
      ok(await app.gql(`mutation($org: ID!, $email: String!) { inviteMember(organizationId: $org, input: { email: $email, roleKey: "viewer" }) { invitation { id } } }`, { org: org.id, email }, { as: owner }))
        .inviteMember.invitation.id as string;
    const old1 = await invite(uniqueEmail('a'));
    const old2 = await invite(uniqueEmail('b'));
    const fresh = await invite(uniqueEmail('c'));
    await readAll(app, `UPDATE invitations SET expires_at = now() - interval '1 second' WHERE organization_id = $1 AND id = ANY($2::uuid[])`, [org.id, [old1, old2]]);
    expect((await scheduler.runOnce()).invitation_expiry).toBe(2);
    const rows = await readAll(app, `SELECT id, status FROM invitations WHERE organization_id = $1 ORDER BY created_at`, [org.id]);
    expect(Object.fromEntries(rows.map((r) => [r.id, r.status]))).toEqual({ [old1]: 'EXPIRED', [old2]: 'EXPIRED', [fresh]: 'PENDING' });
    expect((await scheduler.runOnce()).invitation_expiry).toBe(0);
  });

  it('runs on its own every JOB_INTERVAL_SECONDS once started, and stops', async () => {
    const timed = createScheduler({ ...services, config: { ...services.config, jobIntervalSeconds: 1 } });
    const owner = uniqueEmail('timer');
    const org = await createOrganization(app, owner);
    await setSubscription(app, org.id, `trial_ends_at = now() - interval '1 second'`);
    timed.start();
    try {
      const deadline = Date.now() + 15000;
      while ((await subscriptionRow(app, org.id)).status === 'TRIALING' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    } finally {
      await timed.stop();
    }
    expect((await subscriptionRow(app, org.id)).status).toBe('ACTIVE');
  });
});

describe('the due-work lookups', () => {
  it('are SECURITY DEFINER functions with a pinned search_path, owned by a NOLOGIN role that reads only due-time columns', async () => {
    const functions = await readAll(
      app,
      `SELECT p.proname AS name, pg_get_userbyid(p.proowner) AS owner, p.proconfig AS config, p.prosecdef AS definer
       FROM pg_proc p WHERE p.proname LIKE 'app_due_%' AND p.proname <> 'app_due_audit_retention' ORDER BY p.proname`,
    );
    expect(functions).toEqual(
      ['app_due_archive', 'app_due_invitation_expiry', 'app_due_notification_digest', 'app_due_period_end', 'app_due_trial_end'].map((name) => ({ name, owner: JOB_SCAN_ROLE, config: ['search_path=pg_catalog, pg_temp'], definer: true })),
    );
    const [rights] = await readAll(
      app,
      `SELECT r.rolcanlogin AS login, r.rolsuper AS super, r.rolbypassrls AS bypass,
              has_column_privilege($1, 'subscriptions', 'trial_ends_at', 'SELECT') AS due, has_column_privilege($1, 'subscriptions', 'plan_key', 'SELECT') AS plan,
              has_table_privilege($1, 'subscriptions', 'UPDATE') AS updates, has_table_privilege($1, 'organizations', 'SELECT') AS organizations,
              has_column_privilege($1, 'invitations', 'email', 'SELECT') AS emails,
              has_column_privilege($1, 'notification_digest_items', 'title', 'SELECT') AS titles
       FROM pg_roles r WHERE r.rolname = $1`,
      [JOB_SCAN_ROLE],
    );
    expect(rights).toEqual({ login: false, super: false, bypass: false, due: true, plan: false, updates: false, organizations: false, emails: false, titles: false });
  });
});

describe('two service instances on one database', () => {
  let second: Database;
  let other: Scheduler;
  beforeAll(async () => {
    // On PostgreSQL a second pool (a second instance); PGlite has one connection per data directory, so both schedulers share it.
    second = usesRealPostgres() ? await Database.open({ url: app.databaseUrl }) : app.db;
    other = createScheduler({ ...services, db: second });
  });
  afterAll(async () => {
    await other?.stop();
    if (second && second !== app.db) await second.close();
  });

  it('do each unit of due work exactly once when they run at the same time, repeatedly', async () => {
    const N = 8;
    for (let round = 0; round < 3; round++) {
      const trials: string[] = [];
      const cancelling: string[] = [];
      for (let i = 0; i < N; i++) {
        const owner = uniqueEmail(`two${round}`);
        const a = await createOrganization(app, owner);
        await setSubscription(app, a.id, `trial_ends_at = now() - interval '1 second'`);
        trials.push(a.id);
        const b = await createOrganization(app, owner);
        ok(await app.gql(CANCEL, { org: b.id }, { as: owner }));
        await setSubscription(app, b.id, `current_period_end = now() - interval '1 second', current_period_start = now() - interval '1 month'`);
        cancelling.push(b.id);
      }
      const [x, y] = await Promise.all([scheduler.runOnce(), other.runOnce()]);
      expect(x.trial_end! + y.trial_end!).toBe(N);
      expect(x.period_end! + y.period_end!).toBe(N);
      const events = await readAll(
        app,
        `SELECT organization_id, count(*)::int AS n FROM audit_events WHERE organization_id = ANY($1::uuid[]) AND action = 'subscription.status_changed' GROUP BY organization_id`,
        [[...trials, ...cancelling]],
      );
      expect(events).toHaveLength(2 * N);
      expect(events.every((e) => e.n === 1)).toBe(true);
      const statuses = await readAll(app, `SELECT status, count(*)::int AS n FROM subscriptions WHERE organization_id = ANY($1::uuid[]) GROUP BY status ORDER BY status`, [[...trials, ...cancelling]]);
      expect(statuses).toEqual([
        { status: 'ACTIVE', n: N },
        { status: 'EXPIRED', n: N },
      ]);
    }
  });
});
