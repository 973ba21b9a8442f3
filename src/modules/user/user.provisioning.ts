import type { Viewer } from '../../auth/principal';
import type { Session, TenantTransaction } from '../../database/tenant-transaction';
import { DEFAULT_ORGANIZATION_KEY } from '../organization/organization.seed';

/**
 * A verified ADMIN_EMAIL becomes owner of the seeded `default` organization while it has no
 * owner (as in a single-tenant self-hosted install). Users themselves are provisioned just in
 * time when their transaction opens (`app_open_session`).
 *
 * The seeded organization's id when this viewer may claim it (one read, only for ADMIN_EMAIL).
 */
export async function defaultOrganizationToClaim(tx: TenantTransaction, session: Session, viewer: Viewer, adminEmail: string): Promise<string | null> {
  if (!viewer.emailVerified || viewer.email !== adminEmail) return null;
  const [state] = await tx.query<{ id: string }>(`SELECT value->>'id' AS id FROM service_state WHERE key = $1`, [DEFAULT_ORGANIZATION_KEY]);
  return state && !session.roles.has(state.id) ? state.id : null;
}

/** Makes the viewer owner of the seeded organization if it still has none; true when it did. Run it in a savepoint. */
export async function claimOrganization(tx: TenantTransaction, organizationId: string, viewer: Viewer): Promise<boolean> {
  // The policies must let the insert in; the scope narrows again when there was nothing to claim.
  await tx.widen(organizationId, 'owner');
  const inserted = await tx.query<{ id: string }>(
    // Only while the seeded organization still exists, is not deleted and has no owner.
    `INSERT INTO memberships (organization_id, user_id, role_key)
     SELECT o.id, $2, 'owner' FROM organizations o
     WHERE o.id = $1 AND o.status <> 'DELETED'
       AND NOT EXISTS (SELECT 1 FROM memberships WHERE organization_id = $1 AND role_key = 'owner')
     ON CONFLICT DO NOTHING RETURNING id`,
    [organizationId, viewer.userId],
  );
  if (inserted.length === 0) await tx.narrow(organizationId);
  return inserted.length > 0;
}
