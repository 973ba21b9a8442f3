import type { MigrationInterface, QueryRunner } from 'typeorm';
import { APP_ROLE, JOB_SCAN_ROLE } from '../roles';
import { ensureRole, giveFunctionTo } from './1764600000000-hardening';
import { ORG_SCOPE_INITPLAN } from './1764700000000-rls-initplan';

/** The tenant tables this migration adds (row-level security forced, like the others). */
export const SUBSCRIPTION_TABLES = ['subscriptions', 'billing_webhook_events'] as const;

const ts = 'timestamptz(3) NOT NULL DEFAULT now()';
const STATUSES = `'TRIALING', 'ACTIVE', 'PAST_DUE', 'SUSPENDED', 'PAUSED', 'CANCELLING', 'EXPIRED', 'ARCHIVED'`;

/**
 * Subscriptions and the background jobs' due-work lookups (SPEC §5, Billing; §1, jobs):
 * - `subscriptions`, a tenant table, one row per organization: plan, status, billing interval,
 *   the current period, the scheduled downgrade, the trial and cancellation fields. Every due
 *   time is a column (`trial_ends_at`, `current_period_end`, `archive_at`) that jobs compare with
 *   the database's `now()`. Existing organizations get one here: ACTIVE on FREE (their trial, if
 *   any, is not known), except that a new install's default organization is created later by the
 *   seed with a trial like any other.
 * - `billing_webhook_events`, a tenant table: the ids of processed webhook events (replay protection).
 * - One SECURITY DEFINER lookup per job kind, owned by a NOLOGIN role that may read only the
 *   due-time columns: it answers which organizations have due work of that kind, nothing else.
 *   The work itself then runs per organization with the system principal, under row-level security.
 */
export class Subscriptions1765100000000 implements MigrationInterface {
  name = 'Subscriptions1765100000000';

  async up(q: QueryRunner): Promise<void> {
    await ensureRole(q, JOB_SCAN_ROLE);
    await q.query(`
      CREATE TABLE subscriptions (
        organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        plan_key text NOT NULL REFERENCES plans (key),
        status text NOT NULL CHECK (status IN (${STATUSES})),
        billing_interval text NOT NULL DEFAULT 'MONTHLY' CHECK (billing_interval IN ('MONTHLY', 'ANNUAL')),
        current_period_start timestamptz(3) NOT NULL,
        current_period_end timestamptz(3) NOT NULL,
        trial_ends_at timestamptz(3),
        scheduled_plan_key text REFERENCES plans (key),
        scheduled_billing_interval text CHECK (scheduled_billing_interval IN ('MONTHLY', 'ANNUAL')),
        cancel_at_period_end boolean NOT NULL DEFAULT false,
        cancelled_at timestamptz(3),
        auto_renew boolean NOT NULL DEFAULT true,
        expired_at timestamptz(3),
        archive_at timestamptz(3),
        created_at ${ts},
        updated_at ${ts},
        PRIMARY KEY (organization_id, id),
        CONSTRAINT subscriptions_one_per_organization UNIQUE (organization_id),
        CHECK (current_period_end > current_period_start)
      )`);
    // Federation references name a subscription by id alone.
    await q.query(`CREATE INDEX subscriptions_id_idx ON subscriptions (id)`);
    // The scans of the jobs: only rows in a state with a due time.
    await q.query(`CREATE INDEX subscriptions_trial_due_idx ON subscriptions (trial_ends_at) WHERE status = 'TRIALING'`);
    await q.query(`CREATE INDEX subscriptions_period_due_idx ON subscriptions (current_period_end) WHERE status IN ('ACTIVE', 'PAST_DUE', 'CANCELLING')`);
    await q.query(`CREATE INDEX subscriptions_archive_due_idx ON subscriptions (archive_at) WHERE status = 'EXPIRED'`);
    await q.query(`CREATE INDEX invitations_pending_expiry_idx ON invitations (expires_at) WHERE status = 'PENDING'`);

    await q.query(`
      CREATE TABLE billing_webhook_events (
        organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
        event_id text NOT NULL CHECK (char_length(event_id) BETWEEN 1 AND 200),
        type text NOT NULL,
        processed_at ${ts},
        PRIMARY KEY (organization_id, event_id)
      )`);

    for (const table of SUBSCRIPTION_TABLES) {
      await q.query(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`);
      await q.query(`
        CREATE POLICY tenant_isolation ON ${table}
          USING (organization_id = ANY (${ORG_SCOPE_INITPLAN})) WITH CHECK (organization_id = ANY (${ORG_SCOPE_INITPLAN}))`);
    }
    // A subscription is created with its organization and changed, never deleted by the service.
    await q.query(`GRANT SELECT, INSERT, UPDATE ON subscriptions TO ${APP_ROLE}`);
    await q.query(`GRANT SELECT, INSERT ON billing_webhook_events TO ${APP_ROLE}`);

    // Existing organizations: one subscription each, ACTIVE on FREE from now (written by the
    // migration's owner, outside any tenant scope: row-level security is forced, so the policy is
    // opened for this transaction only through a scope of every organization).
    await q.query(`SELECT set_config('app.org_ids', coalesce((SELECT string_agg(id::text, ',') FROM organizations), ''), true)`);
    await q.query(`
      INSERT INTO subscriptions (organization_id, plan_key, status, current_period_start, current_period_end)
      SELECT o.id, 'FREE', 'ACTIVE', now(), now() + interval '1 month' FROM organizations o
      ON CONFLICT (organization_id) DO NOTHING`);

    // ------------------------------------------------------------------ due-work lookups of the jobs
    await q.query(`GRANT SELECT (organization_id, status, trial_ends_at, current_period_end, archive_at) ON subscriptions TO ${JOB_SCAN_ROLE}`);
    await q.query(`GRANT SELECT (organization_id, status, expires_at) ON invitations TO ${JOB_SCAN_ROLE}`);
    await q.query(`CREATE POLICY job_scan ON subscriptions FOR SELECT TO ${JOB_SCAN_ROLE} USING (true)`);
    await q.query(`CREATE POLICY job_scan ON invitations FOR SELECT TO ${JOB_SCAN_ROLE} USING (true)`);
    const lookups: Array<[string, string]> = [
      ['app_due_trial_end', `SELECT DISTINCT organization_id FROM public.subscriptions WHERE status = 'TRIALING' AND trial_ends_at <= now() LIMIT p_limit`],
      ['app_due_period_end', `SELECT DISTINCT organization_id FROM public.subscriptions WHERE status IN ('ACTIVE', 'PAST_DUE', 'CANCELLING') AND current_period_end <= now() LIMIT p_limit`],
      ['app_due_archive', `SELECT DISTINCT organization_id FROM public.subscriptions WHERE status = 'EXPIRED' AND archive_at <= now() LIMIT p_limit`],
      ['app_due_invitation_expiry', `SELECT DISTINCT organization_id FROM public.invitations WHERE status = 'PENDING' AND expires_at <= now() LIMIT p_limit`],
    ];
    for (const [name, body] of lookups) {
      await q.query(`
        CREATE FUNCTION ${name}(p_limit integer) RETURNS SETOF uuid
          LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$ ${body} $$`);
      await giveFunctionTo(q, `${name}(integer)`, JOB_SCAN_ROLE);
      await q.query(`GRANT EXECUTE ON FUNCTION ${name}(integer) TO ${APP_ROLE}`);
    }
  }

  async down(q: QueryRunner): Promise<void> {
    for (const name of ['app_due_trial_end', 'app_due_period_end', 'app_due_archive', 'app_due_invitation_expiry']) await q.query(`DROP FUNCTION IF EXISTS ${name}(integer)`);
    await q.query(`DROP POLICY IF EXISTS job_scan ON invitations`);
    await q.query(`REVOKE ALL ON invitations FROM ${JOB_SCAN_ROLE}`);
    await q.query(`DROP INDEX IF EXISTS invitations_pending_expiry_idx`);
    await q.query(`DROP TABLE IF EXISTS billing_webhook_events`);
    await q.query(`DROP TABLE IF EXISTS subscriptions`);
  }
}
