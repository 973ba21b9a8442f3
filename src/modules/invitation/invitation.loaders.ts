import type { DataSource } from 'typeorm';
import { keysetAfter } from '../../common/pagination';
import { hydrator } from '../../database/hydrate';
import { keyedLoader, ownedCountLoader, ownedPageLoader } from '../../database/loader-helpers';
import type { SqlQuery } from '../../database/tenant-transaction';
import { Invitation, INVITATION_COLUMNS, InvitationStatus } from './invitation.entity';

export interface InvitationFilter {
  status: InvitationStatus | null;
}

/** The status filter over `i` with $n = status; a PENDING invitation past its expiry counts as EXPIRED. */
const statusMatches = (n: number) => `($${n}::text IS NULL
  OR ($${n} = 'PENDING' AND i.status = 'PENDING' AND i.expires_at > now())
  OR ($${n} = 'EXPIRED' AND (i.status = 'EXPIRED' OR (i.status = 'PENDING' AND i.expires_at <= now())))
  OR ($${n} NOT IN ('PENDING', 'EXPIRED') AND i.status = $${n}))`;

/** Per-request loaders of invitations; every query runs under row-level security. */
export function invitationLoaders(query: SqlQuery, ds: DataSource) {
  const toInvitation = hydrator(ds, Invitation);
  return {
    invitationById: keyedLoader<string, Invitation>(
      async (ids) => (await query(`SELECT ${INVITATION_COLUMNS} FROM invitations WHERE id = ANY($1::uuid[])`, [ids])).map(toInvitation),
      (i) => i.id,
    ),
    /** Pages of invitations of many organizations, newest first, one statement per distinct (limit, cursor, filter). */
    invitationPage: ownedPageLoader<Invitation, InvitationFilter>(
      async (organizationIds, limit, after, filter) =>
        (
          await query(
            `SELECT * FROM (
               SELECT ${INVITATION_COLUMNS.split(', ').map((c) => `i.${c}`).join(', ')},
                 row_number() OVER (PARTITION BY i.organization_id ORDER BY i.created_at DESC, i.id DESC) AS rn
               FROM invitations i
               WHERE i.organization_id = ANY($1::uuid[]) AND ${statusMatches(5)} AND ${keysetAfter('i.created_at', 'i.id', 'desc', 2)}
             ) ranked WHERE rn <= $4 ORDER BY organization_id, rn`,
            [organizationIds, after?.[0] ?? null, after?.[1] ?? null, limit, filter.status],
          )
        ).map(toInvitation),
      (i) => i.organizationId,
    ),
    invitationCount: ownedCountLoader<InvitationFilter>((organizationIds, filter) =>
      query<{ owner: string; n: number }>(
        `SELECT i.organization_id AS owner, count(*)::int AS n FROM invitations i
         WHERE i.organization_id = ANY($1::uuid[]) AND ${statusMatches(2)} GROUP BY i.organization_id`,
        [organizationIds, filter.status],
      ),
    ),
  };
}
