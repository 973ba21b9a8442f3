import type { DataSource } from 'typeorm';
import { keysetAfter } from '../../common/pagination';
import { ownedPageLoader } from '../../database/loader-helpers';
import { hydrator } from '../../database/hydrate';
import type { SqlQuery } from '../../database/tenant-transaction';
import { AuditEvent } from './audit-event.entity';
import { type AuditFilter, auditFilterSql } from './audit.filter';

/**
 * The statement of a page of many organizations' trails (newest first, after the cursor, with the
 * filter's conditions): what the loader runs, and what the benchmark explains.
 */
export function auditPageStatement(organizationIds: string[], limit: number, after: [string, string] | null, filter: AuditFilter): { text: string; params: unknown[] } {
  const params: unknown[] = [organizationIds, after?.[0] ?? null, after?.[1] ?? null, limit];
  const conditions = auditFilterSql(filter, params);
  return {
    text: `SELECT e.* FROM unnest($1::uuid[]) AS o(id)
           CROSS JOIN LATERAL (
             SELECT * FROM audit_events a WHERE a.organization_id = o.id AND ${keysetAfter('a.occurred_at', 'a.id', 'desc', 2)}${conditions}
             ORDER BY a.occurred_at DESC, a.id DESC LIMIT $4
           ) e`,
    params,
  };
}

/** Per-request loaders of the audit trail; every query runs under row-level security. */
export function auditLoaders(query: SqlQuery, ds: DataSource) {
  const toEvent = hydrator(ds, AuditEvent);
  return {
    /**
     * Pages of many organizations' trails, newest first, keyset-paginated on (occurred_at, id):
     * stable while events are inserted (a new event is newer than any cursor, so it never shifts a
     * later page), served by the (organization_id, occurred_at DESC, id DESC) index — or, for an
     * actor or resource filter, by the index that leads with it (README, "Audit trail").
     */
    auditPage: ownedPageLoader<AuditEvent, AuditFilter>(async (organizationIds, limit, after, filter) => {
      const { text, params } = auditPageStatement(organizationIds, limit, after, filter);
      return (await query(text, params)).map(toEvent);
    }, (e) => e.organizationId),
  };
}
