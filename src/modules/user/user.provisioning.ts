import type { TokenIdentity } from '../../auth/principal';
import type { SqlQuery } from '../../database/tenant-transaction';
import { DEFAULT_ORGANIZATION_KEY } from '../organization/organization.seed';

export interface ViewerState {
  userId: string;
  email: string;
  name: string | null;
  emailVerified: boolean;
  /** organization id → role key, read from the database at the start of every request. */
  roles: Map<string, string>;
  /** True when this request saw the user for the first time. */
  created: boolean;
}

interface UserRow {
  id: string;
  email: string;
  email_verified: boolean;
  name: string | null;
  avatar_url: string | null;
}

/**
 * Finds or creates the user behind a token (just in time), refreshing email, name and picture
 * when the claims changed, then reads their memberships. Runs as the first thing in a request
 * transaction, before the principal's organizations are known.
 */
export async function provisionUser(query: SqlQuery, identity: TokenIdentity): Promise<ViewerState> {
  let [row] = await query<UserRow>(`SELECT id, email, email_verified, name, avatar_url FROM users WHERE subject = $1`, [identity.subject]);
  let created = false;
  if (!row) {
    [row] = await query<UserRow & { inserted: boolean }>(
      `INSERT INTO users (subject, email, email_verified, name, avatar_url) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (subject) DO UPDATE SET email = EXCLUDED.email
       RETURNING id, email, email_verified, name, avatar_url, (xmax = 0) AS inserted`,
      [identity.subject, identity.email, identity.emailVerified, identity.name, identity.picture],
    );
    created = (row as UserRow & { inserted: boolean }).inserted;
  }
  const nameChanged = identity.name !== null && identity.name !== row.name;
  const pictureChanged = identity.picture !== null && identity.picture !== row.avatar_url;
  if (row.email !== identity.email || row.email_verified !== identity.emailVerified || nameChanged || pictureChanged) {
    [row] = await query<UserRow>(
      `UPDATE users SET email = $2, email_verified = $3, name = COALESCE($4, name), avatar_url = COALESCE($5, avatar_url), updated_at = now()
       WHERE id = $1 RETURNING id, email, email_verified, name, avatar_url`,
      [row.id, identity.email, identity.emailVerified, identity.name, identity.picture],
    );
  }
  await query(`SELECT set_config('app.user_id', $1, true)`, [row.id]);
  const memberships = await query<{ organization_id: string; role_key: string }>(
    `SELECT organization_id, role_key FROM memberships WHERE user_id = $1`,
    [row.id],
  );
  return {
    userId: row.id,
    email: row.email,
    name: row.name,
    emailVerified: row.email_verified,
    roles: new Map(memberships.map((m) => [m.organization_id, m.role_key])),
    created,
  };
}

/**
 * A verified ADMIN_EMAIL becomes owner of the seeded `default` organization while it has no
 * owner (as in a single-tenant self-hosted install). Returns its id when the claim happened.
 */
export async function claimDefaultOrganization(query: SqlQuery, viewer: ViewerState, adminEmail: string): Promise<string | null> {
  if (!viewer.emailVerified || viewer.email !== adminEmail) return null;
  const [state] = await query<{ id: string }>(`SELECT value->>'id' AS id FROM service_state WHERE key = $1`, [DEFAULT_ORGANIZATION_KEY]);
  if (!state || viewer.roles.has(state.id)) return null;
  // The scope is widened for this one insert only; the caller sets the final scope afterwards.
  await query(`SELECT set_config('app.org_ids', $1, true)`, [state.id]);
  const inserted = await query<{ id: string }>(
    // Only while the seeded organization still exists, is not deleted and has no owner.
    `INSERT INTO memberships (organization_id, user_id, role_key)
     SELECT o.id, $2, 'owner' FROM organizations o
     WHERE o.id = $1 AND o.status <> 'DELETED'
       AND NOT EXISTS (SELECT 1 FROM memberships WHERE organization_id = $1 AND role_key = 'owner')
     ON CONFLICT DO NOTHING RETURNING id`,
    [state.id, viewer.userId],
  );
  if (inserted.length === 0) return null;
  viewer.roles.set(state.id, 'owner');
  return state.id;
}
