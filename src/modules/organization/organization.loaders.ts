import DataLoader from 'dataloader';
import type { DataSource } from 'typeorm';
import { countLoader, groupedLoader, keyedLoader, oneOf, scopeLoader } from '../../database/loader-helpers';
import { hydrator } from '../../database/hydrate';
import { ListColumns } from '../../database/projection';
import type { SqlQuery } from '../../database/tenant-transaction';
import { Role } from '../membership/role.entity';
import type { User } from '../user/user.entity';
import { userJson, userPrimer } from '../user/user.loaders';
import { Organization } from './organization.entity';
import { ORGANIZATION_COLUMNS } from './organization.rows';

/** What of a principal its organizations' security settings could refuse (organizationsThatMayRefuse). */
export interface RefusalTest {
  /** A user token: MFA and the session timeout concern it. */
  user: boolean;
  mfa: boolean;
  /** Seconds since the token's authentication; null when unknown. */
  ageSeconds: number | null;
  defaultTimeoutMinutes: number;
}

/** The largest integer parameter (PostgreSQL's integer). */
const MAX_INT = 2_147_483_647;

/**
 * What lists of organizations read: the lean columns serve these fields (their own columns, and
 * fields whose resolvers and rules read only the organization's id). Anything else a selection
 * names (settings, security, subscription…) reads every column.
 */
export const ORGANIZATION_LIST_COLUMNS = new ListColumns('id, name, slug, status, created_at', ORGANIZATION_COLUMNS, [
  'id',
  'name',
  'slug',
  'status',
  'createdAt',
  'members',
  'owner',
  'memberCount',
  'workspaceCount',
  'environmentCount',
  'roles',
  'viewerRole',
  'viewerPermissions',
  'workspaces',
  'workspace',
]);

/** An organization's owner: its membership's user id (OWNER_ALONG adds the user's row, primed into the user loader). */
export interface OwnerRow {
  organization_id: string;
  user_id: string;
}

/**
 * The owner of organization `o` and the owner's user (`user_row`, userJson; null when row-level
 * security hides it), as one JSON value: what ownerIdByOrganization reads, brought along with the
 * organization. Every organization has exactly one owner (memberships_one_owner).
 */
const OWNER_ALONG = `(SELECT jsonb_build_object('organization_id', m.organization_id, 'user_id', m.user_id,
    'user_row', (SELECT ${userJson('u')} FROM users u WHERE u.id = m.user_id))
  FROM memberships m WHERE m.organization_id = o.id AND m.role_key = 'owner') AS owner_along`;

/** Per-request loaders of organizations and their aggregates; every query runs under row-level security. */
export function organizationLoaders(
  query: SqlQuery,
  ds: DataSource,
  userById: DataLoader<string, User | null, unknown>,
  /** The request's principal as organizationsThatMayRefuse tests it; null: nothing could refuse it. */
  refusalTest: () => RefusalTest | null,
) {
  const primeUser = userPrimer(ds, userById);
  const toOrganization = hydrator(ds, Organization);
  const toRole = hydrator(ds, Role);
  /** The owner of each organization, its user read along (and primed). */
  const ownerIdByOrganization = keyedLoader<string, OwnerRow>(
    async (ids) => {
      const k = oneOf('m.organization_id', 1, ids);
      const rows = await query<OwnerRow & { user_row: unknown }>(
        `SELECT m.organization_id, m.user_id, (SELECT ${userJson('u')} FROM users u WHERE u.id = m.user_id) AS user_row
         FROM memberships m WHERE ${k.sql} AND m.role_key = 'owner'`,
        [k.param],
      );
      for (const row of rows) primeUser(row);
      return rows;
    },
    (r) => r.organization_id,
  );
  /**
   * Organizations by id or by slug (slugs are lowercase, a CHECK constraint: the lookup is a plain
   * index condition applied before the policy), primed into organizationById. `withOwner`: each
   * with its owner and the owner's user read along (OWNER_ALONG) and primed, for a selection that
   * asks for the owner — one statement instead of two.
   */
  const organizationsBy = (column: 'id' | 'slug', withOwner: boolean) =>
    keyedLoader<string, Organization>(
      async (keys) => {
        const k = column === 'id' ? oneOf('o.id', 1, keys) : oneOf('o.slug', 1, keys.map((s) => s.toLowerCase()), 'text');
        const rows = await query<Record<string, unknown> & { owner_along?: unknown }>(
          `SELECT ${ORGANIZATION_COLUMNS}${withOwner ? `, ${OWNER_ALONG}` : ''} FROM organizations o WHERE ${k.sql}`,
          [k.param],
        );
        return rows.map((row) => {
          const organization = toOrganization(row);
          organizationById.prime(organization.id, organization);
          if (withOwner) {
            const owner = (row.owner_along ?? null) as (OwnerRow & { user_row: unknown }) | null;
            if (owner) primeUser(owner);
            ownerIdByOrganization.clear(organization.id).prime(organization.id, owner && { organization_id: owner.organization_id, user_id: owner.user_id });
          }
          return organization;
        });
      },
      column === 'id' ? (o) => o.id : (o) => o.slug,
      column === 'id' ? undefined : (slug) => slug.toLowerCase(),
    );
  const organizationById = organizationsBy('id', false);
  return {
    organizationById,
    organizationWithOwnerById: organizationsBy('id', true),
    /**
     * The organizations of the scope whose security settings could refuse this request's principal
     * (SPEC §2): MFA required of a token without it, a session timeout the token's age could
     * exceed (or an age unknown), an IP allowlist. The rest surely let it in; these few are decided
     * exactly by Access.inside. One light statement for the whole scope (row-level security keeps
     * it to the principal's organizations) instead of every organization read in full; it needs no
     * ids, so it can go with the opening of the transaction. Without a test (the service's own jobs,
     * anonymous) none could refuse.
     *
     * It reads the columns generated from `security` (migration 1766300000000): its conditions are
     * then leakproof comparisons, tested through their indexes before the policy, which only sees
     * the organizations they let through. A timeout of t minutes is exceeded by an age of more
     * than t × 60 seconds, that is when t < ceil(age / 60) (`$3`; unknown age: MAX_INT, above every
     * stored timeout).
     */
    organizationsThatMayRefuse: scopeLoader(async (): Promise<ReadonlySet<string>> => {
      const test = refusalTest();
      if (!test) return new Set();
      const exceededBelow = test.ageSeconds === null ? MAX_INT : Math.min(MAX_INT, Math.ceil(test.ageSeconds / 60));
      const rows = await query<{ id: string }>(
        `SELECT id FROM organizations WHERE
           ($1::boolean AND NOT $2::boolean AND require_mfa)
           OR ($1::boolean AND session_timeout_minutes > 0 AND session_timeout_minutes < $3::integer)
           OR ($1::boolean AND session_timeout_minutes IS NULL AND $4::integer > 0 AND $4::integer < $3::integer)
           OR ip_allowlisted`,
        [test.user, test.mfa, exceededBelow, test.defaultTimeoutMinutes],
      );
      return new Set(rows.map((r) => r.id));
    }),
    organizationBySlug: organizationsBy('slug', false),
    organizationWithOwnerBySlug: organizationsBy('slug', true),
    memberCount: countLoader((ids) => {
      const k = oneOf('organization_id', 1, ids);
      return query(`SELECT organization_id AS key, count(*) FROM memberships WHERE ${k.sql} GROUP BY organization_id`, [k.param]);
    }),
    workspaceCount: countLoader((ids) => {
      const k = oneOf('organization_id', 1, ids);
      return query(`SELECT organization_id AS key, count(*) FROM workspaces WHERE ${k.sql} GROUP BY organization_id`, [k.param]);
    }),
    environmentCount: countLoader((ids) => {
      const k = oneOf('organization_id', 1, ids);
      return query(`SELECT organization_id AS key, count(*) FROM environments WHERE ${k.sql} AND is_active GROUP BY organization_id`, [k.param]);
    }),
    ownerIdByOrganization,
    rolesByOrganization: groupedLoader<string, Role>(
      async (ids) => {
        const k = oneOf('organization_id', 1, ids);
        // System roles first, from the most to the least powerful; then custom roles, oldest first.
        return (await query(`SELECT * FROM roles WHERE ${k.sql}
          ORDER BY is_system DESC, array_position(ARRAY['owner', 'admin', 'member', 'viewer'], key), created_at, key`, [k.param])).map(toRole);
      },
      (r) => r.organizationId,
    ),
  };
}
