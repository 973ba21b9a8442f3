import type DataLoader from 'dataloader';
import type { DataSource } from 'typeorm';
import { keysetAfter } from '../../common/pagination';
import { groupedLoader, keyedLoader, oneOf, ownedCountLoader, ownedPageLoader } from '../../database/loader-helpers';
import { hydrator } from '../../database/hydrate';
import type { SqlQuery } from '../../database/tenant-transaction';
import type { User } from '../user/user.entity';
import { userJson, userPrimer, type UserColumns } from '../user/user.loaders';
import { Membership } from './membership.entity';
import { Role } from './role.entity';

/** Narrows an organization's member list: a role key, and a LIKE pattern on name or email. */
export interface MemberFilter {
  roleKey: string | null;
  pattern: string | null;
}

/**
 * A page of members: the filter, and whether the page reads each member's role along (`roles`).
 * Without it, each membership's own role key answers a selection of the role's `key` alone
 * (roleKeyAlone): the page reads no role.
 */
export interface MemberPageFilter extends MemberFilter {
  roles: boolean;
}

/**
 * The member filter over `m` with $n = role key and $n+1 = pattern. The users table is asked only
 * when there is a pattern: joining it for every member would let the planner scan all users
 * (each checked by its row-level-security policy) to find a page of twenty.
 */
const matches = (n: number) => `($${n}::text IS NULL OR m.role_key = $${n})
  AND ($${n + 1}::text IS NULL OR EXISTS (SELECT 1 FROM users s WHERE s.id = m.user_id
    AND (lower(s.email) LIKE $${n + 1} OR lower(coalesce(s.name, '')) LIKE $${n + 1})))`;

/** Each member's role, with the first member of the page (by organization) who has it. */
const ROLE_ALONG = `,
             CASE WHEN p.rn = min(p.rn) OVER (PARTITION BY p.organization_id, p.role_key)
               THEN (SELECT to_jsonb(r) FROM roles r WHERE r.organization_id = p.organization_id AND r.key = p.role_key) END AS role_row`;

/** Per-request loaders of memberships; every query runs under row-level security. */
export function membershipLoaders(query: SqlQuery, ds: DataSource, users: Record<'userById' | 'leanUserById', DataLoader<string, User | null, unknown>>) {
  const toMembership = hydrator(ds, Membership);
  const toRole = hydrator(ds, Role);
  /** A page's users go to the loaders that can take them: a whole user serves a lean selection too. */
  const primeUsers: Record<UserColumns, (row: { user_row?: unknown }) => void> = {
    lean: userPrimer(ds, users.leanUserById),
    full: userPrimer(ds, users.userById, users.leanUserById),
  };
  /** A role by its key in an organization (what a membership names); primed by the member page. */
  const roleByKey = keyedLoader<{ organizationId: string; key: string }, Role>(
    async (refs) =>
      (
        await query(`SELECT r.* FROM roles r JOIN unnest($1::uuid[], $2::text[]) AS k(org, key) ON r.organization_id = k.org AND r.key = k.key`, [
          refs.map((r) => r.organizationId),
          refs.map((r) => r.key),
        ])
      ).map(toRole),
    (r) => ({ organizationId: r.organizationId, key: r.key }),
    (r) => `${r.organizationId}:${r.key}`,
  );
  /** Pages of members of many organizations, oldest first, each member's user read with `userColumns` (and primed). */
  const pageOf = (userColumns: UserColumns) => {
    const primeUser = primeUsers[userColumns];
    return ownedPageLoader<Membership, MemberPageFilter>(
      async (organizationIds, limit, after, filter) => {
        const owners = oneOf('m.organization_id', 1, organizationIds);
        const rows = await query(
          // The page first (memberships only), then each row's user and role by key: the planner
          // cannot turn them into a scan of every user (each checked by its policy). A role comes
          // with the first member of the page who has it: each lookup in roles pays for the scope
          // of its policy (an index condition, prepared again per lookup), and a page of fifty
          // has two or three roles. Without `roles`, no role is read: the statement does not touch
          // the roles table, nor parse the scope for its policy (about 0.04 ms of PostgreSQL's
          // time with 200 organizations in scope).
          `WITH page AS MATERIALIZED (
             SELECT * FROM (
               SELECT m.*, row_number() OVER (PARTITION BY m.organization_id ORDER BY m.joined_at, m.id) AS rn
               FROM memberships m
               WHERE ${owners.sql} AND ${matches(5)} AND ${keysetAfter('m.joined_at', 'm.id', 'asc', 2)}
             ) ranked WHERE rn <= $4
           )
           SELECT p.*,
             (SELECT ${userJson('u', userColumns)} FROM users u WHERE u.id = p.user_id) AS user_row${filter.roles ? ROLE_ALONG : ''}
           FROM page p ORDER BY p.organization_id, p.rn`,
          [owners.param, after?.[0] ?? null, after?.[1] ?? null, limit, filter.roleKey, filter.pattern],
        );
        return rows.map((row) => {
          // The member's user came with the page, and its role with the role's first member in it.
          primeUser(row);
          if (row.role_row && typeof row.role_row === 'object') {
            const role = toRole(row.role_row as Record<string, unknown>);
            roleByKey.clear({ organizationId: role.organizationId, key: role.key }).prime({ organizationId: role.organizationId, key: role.key }, role);
          }
          return toMembership(row);
        });
      },
      (m) => m.organizationId,
    );
  };
  return {
    roleByKey,
    /** A role by id, among the principal's organizations (row-level security hides the others). */
    roleById: keyedLoader<string, Role>(async (ids) => {
      const k = oneOf('id', 1, ids);
      return (await query(`SELECT * FROM roles WHERE ${k.sql}`, [k.param])).map(toRole);
    }, (r) => r.id),
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
    /** Pages of members of many organizations with whole users (and their roles when `filter.roles`), oldest first, one statement per distinct (limit, cursor, filter). */
    memberPage: pageOf('full'),
    /** The same with only USER_LIST_COLUMNS.lean of each member's user: for a page whose users' selection they serve. */
    leanMemberPage: pageOf('lean'),
    filteredMemberCount: ownedCountLoader<MemberFilter>((organizationIds, filter) => {
      const owners = oneOf('m.organization_id', 1, organizationIds);
      return query<{ owner: string; n: number }>(
        `SELECT m.organization_id AS owner, count(*)::int AS n FROM memberships m
         WHERE ${owners.sql} AND ${matches(2)} GROUP BY m.organization_id`,
        [owners.param, filter.roleKey, filter.pattern],
      );
    }),
  };
}
