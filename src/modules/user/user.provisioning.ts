import type { Viewer } from '../../auth/principal';
import type { Session, TenantTransaction } from '../../database/tenant-transaction';
import { DEFAULT_ORGANIZATION_KEY } from '../organization/organization.seed';

/**
 * A verified ADMIN_EMAIL becomes owner of the seeded `default` organization while it has no
 * owner (as in a single-tenant self-hosted install). Users themselves are provisioned just in
 * time when their transaction opens (`app_open_transaction`). Returns the organization's id
 * when the claim happened.
 */
export async function claimDefaultOrganization(tx: TenantTransaction, session: Session, viewer: Viewer, adminEmail: string): Promise<string | null> {
  if (!viewer.emailVerified || viewer.email !== adminEmail) return null;
  const [state] = await tx.query<{ id: string }>(`SELECT value->>'id' AS id FROM service_state WHERE key = $1`, [DEFAULT_ORGANIZATION_KEY]);
  if (!state || session.roles.has(state.id)) return null;
  // The policies must let the insert in; the scope narrows again when there was nothing to claim.
  await tx.widen(state.id, 'owner');
  const inserted = await tx.query<{ id: string }>(
    // Only while the seeded organization still exists, is not deleted and has no owner.
    `INSERT INTO memberships (organization_id, user_id, role_key)
     SELECT o.id, $2, 'owner' FROM organizations o
     WHERE o.id = $1 AND o.status <> 'DELETED'
       AND NOT EXISTS (SELECT 1 FROM memberships WHERE organization_id = $1 AND role_key = 'owner')
     ON CONFLICT DO NOTHING RETURNING id`,
    [state.id, viewer.userId],
  );
  if (inserted.length === 0) {
    await tx.narrow(state.id);
    return null;
  }
  return state.id;
}
