import type DataLoader from 'dataloader';
import type { DataSource } from 'typeorm';
import { keysetAfter } from '../../common/pagination';
import { groupedLoader, ownedCountLoader, ownedPageLoader } from '../../database/loader-helpers';
import { hydrator } from '../../database/hydrate';
import type { SqlQuery } from '../../database/tenant-transaction';
import type { User } from '../user/user.entity';
import { userJson, userPrimer } from '../user/user.loaders';
import { Membership } from './membership.entity';

/** Narrows an organization's member list: a role key, and a LIKE pattern on name or email. */
export interface MemberFilter {
  roleKey: string | null;
  pattern: string | null;
}

/** The member filter over `m` (joined to `u`) with $n = role key and $n+1 = pattern. */
const matches = (n: number) => `($${n}::text IS NULL OR m.role_key = $${n})
  AND ($${n + 1}::text IS NULL OR lower(u.email) LIKE $${n + 1} OR lower(coalesce(u.name, '')) LIKE $${n + 1})`;

/** Per-request loaders of memberships; every query runs under row-level security. */
export function membershipLoaders(query: SqlQuery, ds: DataSource, userById: DataLoader<string, User | null, unknown>) {
  const toMembership = hydrator(ds, Membership);
  const primeUser = userPrimer(ds, userById);
  return {
    /** A user's memberships, oldest first; a deleted organization's only for its owner (who may restore it). */
    membershipsOfUser: groupedLoader<string, Membership>(
      async (userIds) =>
        (
          await query(
            `SELECT m.* FROM memberships m JOIN organizations o ON o.id = m.organization_id
             WHERE m.user_id = ANY($1::uuid[]) AND (o.status <> 'DELETED' OR m.role_key = 'owner') ORDER BY m.joined_at, m.id`,
            [userIds],
          )
        ).map(toMembership),
      (m) => m.userId,
    ),
    /** Pages of members of many organizations, oldest first, one statement per distinct (limit, cursor, filter). */
    memberPage: ownedPageLoader<Membership, MemberFilter>(
      async (organizationIds, limit, after, filter) =>
        (
          await query(
            `SELECT * FROM (
               SELECT m.*, ${userJson('u')} AS user_row, row_number() OVER (PARTITION BY m.organization_id ORDER BY m.joined_at, m.id) AS rn
               FROM memberships m JOIN users u ON u.id = m.user_id
               WHERE m.organization_id = ANY($1::uuid[]) AND ${matches(5)} AND ${keysetAfter('m.joined_at', 'm.id', 'asc', 2)}
             ) ranked WHERE rn <= $4 ORDER BY organization_id, rn`,
            [organizationIds, after?.[0] ?? null, after?.[1] ?? null, limit, filter.roleKey, filter.pattern],
          )
        ).map((row) => {
          // The member's user came with the page.
          primeUser(row);
          return toMembership(row);
        }),
      (m) => m.organizationId,
    ),
    filteredMemberCount: ownedCountLoader<MemberFilter>((organizationIds, filter) =>
      query<{ owner: string; n: number }>(
        `SELECT m.organization_id AS owner, count(*)::int AS n FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.organization_id = ANY($1::uuid[]) AND ${matches(2)} GROUP BY m.organization_id`,
        [organizationIds, filter.roleKey, filter.pattern],
      ),
    ),
  };
}
