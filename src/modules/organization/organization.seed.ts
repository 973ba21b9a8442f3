import { randomUUID } from 'node:crypto';
import type { Database } from '../../database/database';
import { insertOrganizationRow, insertOrganizationSkeleton } from './organization.rows';
import { insertInitialSubscription } from '../billing/subscription.rows';

export const DEFAULT_ORGANIZATION_KEY = 'default_organization';

/**
 * Creates the `default` organization (with its default workspace) at first start, as in a
 * single-tenant self-hosted install; a verified ADMIN_EMAIL becomes its owner on first sight.
 * Its subscription starts like any new organization's (TRIAL_DAYS). Recorded in service_state so that it is made once, even if it is later deleted.
 */
export async function seedDefaultOrganization(db: Database, trialDays = 14): Promise<void> {
  await db.withConnection(async (runner) => {
    await runner.startTransaction();
    try {
      // Serialises instances starting together.
      await runner.query(`SELECT pg_advisory_xact_lock(hashtext('seed:default-organization'))`);
      const [state] = await runner.query(`SELECT 1 FROM service_state WHERE key = $1`, [DEFAULT_ORGANIZATION_KEY]);
      if (!state) {
        const id = randomUUID();
        await runner.query(`INSERT INTO service_state (key, value) VALUES ($1, $2)`, [DEFAULT_ORGANIZATION_KEY, JSON.stringify({ id })]);
        // The rows themselves are written like any tenant's: as the service role, scoped to this organization.
        await runner.query(`SELECT app_set_scope('seed', NULL, $1)`, [id]);
        const query = (sql: string, params?: unknown[]) => runner.query(sql, params);
        await insertOrganizationRow(query, { id, name: 'Default', slug: 'default', createdBy: null });
        await insertOrganizationSkeleton(query, id, null);
        await insertInitialSubscription(query, id, trialDays);
      }
      await runner.commitTransaction();
    } catch (error) {
      await runner.rollbackTransaction().catch(() => undefined);
      throw error;
    }
  });
}
