import type { MigrationInterface, QueryRunner } from 'typeorm';
import { APP_ROLE } from '../roles';
import { ORG_SCOPE_INITPLAN } from './1764700000000-rls-initplan';

export const QUOTA_TABLES = ['notification_events'] as const;

/**
 * Quotas (SPEC §5): `notification_events`, a tenant table of notifications the service emits
 * before they are routed to anybody. The quota checker writes one row per threshold crossed
 * (`quota.warning` at 80 %, `quota.blocked` at 100 %; payload `{ resource, level, threshold,
 * used, limit }`) in the transaction of the create that crossed it. The notification feature
 * routes each row to its audience (owners and admins, per their channels) and stamps `routed_at`;
 * until then rows wait here. Append-only for the service.
 */
export class QuotaNotifications1765000000000 implements MigrationInterface {
  name = 'QuotaNotifications1765000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE notification_events (
        organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        type text NOT NULL CHECK (type ~ '^[a-z][a-z0-9_.]{1,63}$'),
        payload jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        routed_at timestamptz(3),
        PRIMARY KEY (organization_id, id)
      )`);
    await q.query(`CREATE INDEX notification_events_unrouted_idx ON notification_events (organization_id, created_at) WHERE routed_at IS NULL`);
    await q.query(`ALTER TABLE notification_events ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE notification_events FORCE ROW LEVEL SECURITY`);
    await q.query(`
      CREATE POLICY tenant_isolation ON notification_events
        USING (organization_id = ANY (${ORG_SCOPE_INITPLAN})) WITH CHECK (organization_id = ANY (${ORG_SCOPE_INITPLAN}))`);
    await q.query(`GRANT SELECT, INSERT ON notification_events TO ${APP_ROLE}`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS notification_events`);
  }
}
