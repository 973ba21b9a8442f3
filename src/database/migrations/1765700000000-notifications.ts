import type { MigrationInterface, QueryRunner } from 'typeorm';
import { APP_ROLE, JOB_SCAN_ROLE, MAILER_ROLE, RECIPIENT_LOOKUP_ROLE } from '../roles';
import { ensureRole, giveFunctionTo } from './1764600000000-hardening';
import { ORG_SCOPE_INITPLAN, USER_INITPLAN } from './1764700000000-rls-initplan';

/** The tenant tables this migration adds (row-level security forced, like the others). */
export const NOTIFICATION_TABLES = ['notification_defaults', 'notification_preferences', 'notification_member_settings', 'notifications', 'notification_digest_items'] as const;

const CHANNEL = `text NOT NULL CHECK (channel IN ('IN_APP', 'EMAIL', 'BOTH', 'NONE'))`;
const TYPE = `text NOT NULL CHECK (type ~ '^[a-z][a-z0-9_.]{1,63}$')`;
const TENANT = `organization_id = ANY (${ORG_SCOPE_INITPLAN})`;
const OWN = `user_id = ${USER_INITPLAN}`;

/**
 * Notifications (SPEC §5), built on the tables of the quota and invitation work:
 * - `notification_defaults` (an organization's channel per type), `notification_preferences` (a
 *   member's override per type) and `notification_member_settings` (the daily digest): the last two
 *   reference the membership, so they go with it; members write only their own rows.
 * - `notifications`: the in-app inbox. Visible only to its recipient (`user_id`), and only while the
 *   recipient is a member (the row references the membership and is deleted with it) — except a
 *   `member.invited` row, which references the invitation instead (its recipient is not a member yet).
 *   A unit of work without a user (a job, scoped to one organization) may read its organization's rows.
 * - `notification_digest_items`: EMAIL notifications of members who chose the daily digest, until
 *   the `notification_digest` job folds a day of them into one `email_outbox` row per recipient.
 * - `email_outbox` gains what a mailer needs: `attempts`, `last_error`, `next_attempt_at`, the
 *   recipient `user_id`, and a `dedupe_key` unique per organization (the digest job is idempotent).
 *   The role `tenant_service_mailer` reads it across organizations and marks rows sent or failed.
 * - `notification_events` (quota work) keeps one row per emitted event; the emitter writes it routed (`routed_at`).
 */
export class Notifications1765700000000 implements MigrationInterface {
  name = 'Notifications1765700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE notification_defaults (
        organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
        type ${TYPE},
        channel ${CHANNEL},
        updated_at timestamptz(3) NOT NULL DEFAULT now(),
        PRIMARY KEY (organization_id, type)
      )`);
    await q.query(`
      CREATE TABLE notification_preferences (
        organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
        user_id uuid NOT NULL,
        type ${TYPE},
        channel ${CHANNEL},
        updated_at timestamptz(3) NOT NULL DEFAULT now(),
        PRIMARY KEY (organization_id, user_id, type),
        FOREIGN KEY (organization_id, user_id) REFERENCES memberships (organization_id, user_id) ON DELETE CASCADE
      )`);
    await q.query(`
      CREATE TABLE notification_member_settings (
        organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
        user_id uuid NOT NULL,
        email_digest boolean NOT NULL DEFAULT false,
        updated_at timestamptz(3) NOT NULL DEFAULT now(),
        PRIMARY KEY (organization_id, user_id),
        FOREIGN KEY (organization_id, user_id) REFERENCES memberships (organization_id, user_id) ON DELETE CASCADE
      )`);
    await q.query(`
      CREATE TABLE notifications (
        organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        -- The recipient's membership (= user_id), or null for an invitee: then invitation_id is set.
        member_user_id uuid,
        invitation_id uuid,
        type ${TYPE},
        title text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
        body text CHECK (octet_length(body) <= 4096),
        metadata jsonb,
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        read_at timestamptz(3),
        PRIMARY KEY (organization_id, id),
        FOREIGN KEY (organization_id, member_user_id) REFERENCES memberships (organization_id, user_id) ON DELETE CASCADE,
        FOREIGN KEY (organization_id, invitation_id) REFERENCES invitations (organization_id, id) ON DELETE CASCADE,
        CHECK ((member_user_id = user_id AND invitation_id IS NULL) OR (member_user_id IS NULL AND invitation_id IS NOT NULL))
      )`);
    // The inbox is the recipient's across organizations: looked up by user, newest first.
    await q.query(`CREATE INDEX notifications_recipient_idx ON notifications (user_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX notifications_member_idx ON notifications (organization_id, member_user_id)`);
    await q.query(`
      CREATE TABLE notification_digest_items (
        organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL,
        -- The UTC day the notification belongs to; the digest of a day is built once the day is over.
        day date NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')::date,
        type ${TYPE},
        title text NOT NULL,
        body text,
        metadata jsonb,
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        digested_at timestamptz(3),
        PRIMARY KEY (organization_id, id),
        FOREIGN KEY (organization_id, user_id) REFERENCES memberships (organization_id, user_id) ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX notification_digest_items_pending_idx ON notification_digest_items (organization_id, day) WHERE digested_at IS NULL`);
    await q.query(`CREATE INDEX notification_digest_items_due_idx ON notification_digest_items (day) WHERE digested_at IS NULL`);

    for (const table of NOTIFICATION_TABLES) {
      await q.query(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`);
    }
    for (const table of ['notification_defaults', 'notification_preferences', 'notification_member_settings', 'notification_digest_items']) {
      await q.query(`CREATE POLICY tenant_isolation ON ${table} USING (${TENANT}) WITH CHECK (${TENANT})`);
    }
    // Members read each other's preferences (routing does), but write only their own.
    for (const table of ['notification_preferences', 'notification_member_settings']) {
      await q.query(`CREATE POLICY own_rows_insert ON ${table} AS RESTRICTIVE FOR INSERT TO ${APP_ROLE} WITH CHECK (${OWN})`);
      await q.query(`CREATE POLICY own_rows_update ON ${table} AS RESTRICTIVE FOR UPDATE TO ${APP_ROLE} USING (${OWN}) WITH CHECK (${OWN})`);
      await q.query(`CREATE POLICY own_rows_delete ON ${table} AS RESTRICTIVE FOR DELETE TO ${APP_ROLE} USING (${OWN})`);
    }
    // The inbox: anyone in the organization may write a notification (the emitter routes to other
    // members), only its recipient reads it or marks it read — while a member, or as an invitee.
    const recipient = `${OWN} AND (${TENANT} OR invitation_id IS NOT NULL)`;
    await q.query(`CREATE POLICY tenant_isolation ON notifications FOR INSERT WITH CHECK (${TENANT})`);
    await q.query(`CREATE POLICY recipient_only ON notifications FOR SELECT USING (${recipient})`);
    // A unit of work that acts for no person (a job such as the purge, which counts and then
    // verifies every row of its organization) reads the rows of its organization, never marks them.
    await q.query(`CREATE POLICY organization_unit_reads ON notifications FOR SELECT USING (${USER_INITPLAN} IS NULL AND ${TENANT})`);
    await q.query(`CREATE POLICY recipient_marks_read ON notifications FOR UPDATE USING (${recipient}) WITH CHECK (${recipient})`);

    await q.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON notification_defaults, notification_preferences, notification_member_settings TO ${APP_ROLE}`);
    await q.query(`GRANT SELECT, INSERT ON notifications, notification_digest_items TO ${APP_ROLE}`);
    await q.query(`GRANT UPDATE (read_at) ON notifications TO ${APP_ROLE}`);
    await q.query(`GRANT UPDATE (digested_at) ON notification_digest_items TO ${APP_ROLE}`);

    // ------------------------------------------------------------------ the email outbox, for a mailer
    await q.query(`
      ALTER TABLE email_outbox
        ADD COLUMN user_id uuid REFERENCES users (id) ON DELETE SET NULL,
        ADD COLUMN attempts integer NOT NULL DEFAULT 0,
        ADD COLUMN last_error text,
        ADD COLUMN next_attempt_at timestamptz(3) NOT NULL DEFAULT now(),
        ADD COLUMN dedupe_key text`);
    await q.query(`CREATE UNIQUE INDEX email_outbox_dedupe_key ON email_outbox (organization_id, dedupe_key)`);
    await ensureRole(q, MAILER_ROLE);
    await q.query(`GRANT SELECT ON email_outbox TO ${MAILER_ROLE}`);
    await q.query(`GRANT UPDATE (sent_at, attempts, last_error, next_attempt_at) ON email_outbox TO ${MAILER_ROLE}`);
    await q.query(`CREATE POLICY mailer_reads ON email_outbox FOR SELECT TO ${MAILER_ROLE} USING (true)`);
    await q.query(`CREATE POLICY mailer_marks ON email_outbox FOR UPDATE TO ${MAILER_ROLE} USING (true) WITH CHECK (true)`);

    // ------------------------------------------------------------------ the invitee, found by address
    // member.invited goes to the invitee once they have an account: the inviter may not see users
    // outside its organizations, so one narrow function answers only the ids of verified accounts
    // with exactly this address.
    await ensureRole(q, RECIPIENT_LOOKUP_ROLE);
    await q.query(`GRANT SELECT (id, email, email_verified) ON users TO ${RECIPIENT_LOOKUP_ROLE}`);
    await q.query(`CREATE POLICY recipient_lookup ON users FOR SELECT TO ${RECIPIENT_LOOKUP_ROLE} USING (true)`);
    await q.query(`
      CREATE FUNCTION notification_recipients_by_email(p_email text) RETURNS SETOF uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          SELECT u.id FROM public.users u WHERE lower(u.email) = lower(p_email) AND u.email_verified LIMIT 10
        $$`);
    await giveFunctionTo(q, 'notification_recipients_by_email(text)', RECIPIENT_LOOKUP_ROLE);
    await q.query(`GRANT EXECUTE ON FUNCTION notification_recipients_by_email(text) TO ${APP_ROLE}`);

    // ------------------------------------------------------------------ the digest job's due lookup
    await q.query(`GRANT SELECT (organization_id, day, digested_at) ON notification_digest_items TO ${JOB_SCAN_ROLE}`);
    await q.query(`CREATE POLICY job_scan ON notification_digest_items FOR SELECT TO ${JOB_SCAN_ROLE} USING (true)`);
    await q.query(`
      CREATE FUNCTION app_due_notification_digest(p_limit integer) RETURNS SETOF uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          SELECT DISTINCT organization_id FROM public.notification_digest_items
          WHERE digested_at IS NULL AND day < (now() AT TIME ZONE 'UTC')::date LIMIT p_limit
        $$`);
    await giveFunctionTo(q, 'app_due_notification_digest(integer)', JOB_SCAN_ROLE);
    await q.query(`GRANT EXECUTE ON FUNCTION app_due_notification_digest(integer) TO ${APP_ROLE}`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS app_due_notification_digest(integer)`);
    await q.query(`DROP FUNCTION IF EXISTS notification_recipients_by_email(text)`);
    await q.query(`DROP POLICY IF EXISTS recipient_lookup ON users`);
    await q.query(`REVOKE ALL ON users FROM ${RECIPIENT_LOOKUP_ROLE}`);
    await q.query(`DROP POLICY IF EXISTS mailer_reads ON email_outbox`);
    await q.query(`DROP POLICY IF EXISTS mailer_marks ON email_outbox`);
    await q.query(`REVOKE ALL ON email_outbox FROM ${MAILER_ROLE}`);
    await q.query(`DROP INDEX IF EXISTS email_outbox_dedupe_key`);
    await q.query(`ALTER TABLE email_outbox DROP COLUMN user_id, DROP COLUMN attempts, DROP COLUMN last_error, DROP COLUMN next_attempt_at, DROP COLUMN dedupe_key`);
    for (const table of [...NOTIFICATION_TABLES].reverse()) await q.query(`DROP TABLE IF EXISTS ${table}`);
  }
}
