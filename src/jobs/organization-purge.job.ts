import { ANONYMOUS } from '../auth/principal';
import { type AppServices, RequestContext } from '../context';
import { TenantTransaction } from '../database/tenant-transaction';
import type { JobKind } from './scheduler';

/** The job's name: its system actor, its request ids (`organization_purge:<uuid>`) and its log lines. */
export const PURGE_JOB = 'organization_purge';
/** The SECURITY DEFINER due lookup of migration 1765200000000-organization-deletion. */
export const PURGE_DUE_FUNCTION = 'organizations_due_for_purge';

/** What one purge removed: the organization row and, per tenant table, the rows it held. */
export interface PurgeReport {
  organizationId: string;
  slug: string;
  rows: Record<string, number>;
}

type Query = RequestContext['tx']['query'];

const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/**
 * Every tenant table, read from the catalog (every table of the schema with an `organization_id`
 * column), so that a table added later cannot be forgotten. A tenant table the service's role may
 * not read would make the purge unverifiable: that fails the purge (nothing is deleted).
 */
async function tenantTables(query: Query): Promise<string[]> {
  const rows = await query<{ name: string; readable: boolean }>(
    `SELECT c.relname AS name, has_table_privilege(c.oid, 'SELECT') AS readable
     FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped)
     ORDER BY 1`,
  );
  const unreadable = rows.filter((r) => !r.readable).map((r) => r.name);
  if (unreadable.length > 0) throw new Error(`purge: the service role cannot read tenant table(s) ${unreadable.join(', ')}`);
  return rows.map((r) => r.name);
}

/** Rows of the organization in each table, in one statement. */
async function countRows(query: Query, tables: string[], organizationId: string): Promise<Record<string, number>> {
  if (tables.length === 0) return {};
  const [row] = await query<Record<string, number>>(
    `SELECT ${tables.map((t, i) => `(SELECT count(*)::int FROM public.${ident(t)} WHERE organization_id = $1) AS c${i}`).join(', ')}`,
    [organizationId],
  );
  return Object.fromEntries(tables.map((t, i) => [t, Number(row![`c${i}`])]));
}

/**
 * The purge of one organization, inside the caller's unit of work (scoped to that organization,
 * system principal): claims the organization row (`FOR UPDATE SKIP LOCKED`: another instance at it
 * already means nothing to do here), re-checks it is still due (`purge_at <= now()`, the
 * database's clock: a restore that committed first wins), counts its rows, deletes it through
 * `app_purge_organization` (every row below it goes by cascade, its audit trail included), checks
 * that no row of it remains in any tenant table (else throws: the transaction rolls back and
 * nothing is purged), and writes the purge to the structured log. Null when there was nothing to do.
 */
export async function purgeInTransaction(ctx: RequestContext, organizationId: string): Promise<PurgeReport | null> {
  const query = ctx.tx.query;
  const [claimed] = await query<{ slug: string }>(
    `SELECT slug FROM organizations WHERE id = $1 AND status = 'DELETED' AND purge_at <= now() FOR UPDATE SKIP LOCKED`,
    [organizationId],
  );
  if (!claimed) return null;
  const tables = await tenantTables(query);
  const rows = { organizations: 1, ...(await countRows(query, tables, organizationId)) };
  const [{ purged }] = (await query<{ purged: boolean }>(`SELECT app_purge_organization($1) AS purged`, [organizationId])) as [{ purged: boolean }];
  if (!purged) return null;
  const left = Object.entries(await countRows(query, tables, organizationId)).filter(([, n]) => n > 0);
  if (left.length > 0) throw new Error(`purge: rows of the organization remain in ${left.map(([t]) => t).join(', ')}`);
  const report = { organizationId, slug: claimed.slug, rows };
  // The audit trail is gone with the organization: the structured log is the record of the purge.
  ctx.app.logger.info({ event: 'organization.purged', job: PURGE_JOB, requestId: ctx.requestId, ...report }, 'organization purged');
  return report;
}

/**
 * Purges one organization whose `purge_at` has passed, in a transaction of its own scoped to it
 * with the system principal (the same unit of work the scheduler runs). Null when it is not due,
 * not deleted (restored meanwhile), already purged, or being purged by another instance.
 */
export async function purgeOrganization(app: AppServices, organizationId: string): Promise<PurgeReport | null> {
  const ctx = RequestContext.forSystem(app, organizationId, PURGE_JOB);
  try {
    const report = await ctx.mutate(() => purgeInTransaction(ctx, organizationId));
    await ctx.tx.finish(true);
    return report;
  } catch (error) {
    await ctx.tx.finish(false).catch(() => undefined);
    throw error;
  }
}

/** Organizations due for their purge (`status = 'DELETED' AND purge_at <= now()`), oldest due first. */
export async function duePurges(app: AppServices, limit = 500): Promise<string[]> {
  return TenantTransaction.run(app.db, ANONYMOUS, `${PURGE_JOB}:scan`, async (tx) =>
    (await tx.query<{ id: string }>(`SELECT id FROM ${PURGE_DUE_FUNCTION}($1) AS id`, [limit])).map((r) => r.id),
  );
}

/**
 * The purge as a kind of due work of the one scheduler (src/jobs/jobs.ts): the scheduler lists
 * due organizations through PURGE_DUE_FUNCTION and runs `run` for each in its own transaction,
 * scoped to that organization with the system principal.
 */
export const PURGE_JOB_KIND: JobKind = {
  kind: PURGE_JOB,
  dueFunction: PURGE_DUE_FUNCTION,
  async run(ctx) {
    if (ctx.principal.kind !== 'system') throw new Error('the purge runs with the system principal of one organization');
    return (await purgeInTransaction(ctx, ctx.principal.organizationId)) ? 1 : 0;
  },
};
