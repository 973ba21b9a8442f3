import { DateTimeResolver } from 'graphql-scalars';
import { BadUserInputError } from '../../common/errors';
import type { SqlQuery } from '../../database/tenant-transaction';
import { type AuditFilter, auditFilter, auditFilterSql } from './audit.filter';

export type ExportFormat = 'ndjson' | 'csv';

/** The parameters of `GET /organizations/{id}/audit-events/export`, checked. */
export interface ExportRequest {
  format: ExportFormat;
  filter: AuditFilter;
}

const PARAMETERS = new Set(['format', 'since', 'until', 'actions', 'actorId', 'resourceType', 'resourceId', 'workspaceId']);

const single = (query: Record<string, unknown>, name: string): string | null => {
  const value = query[name];
  if (value === undefined) return null;
  if (typeof value !== 'string') throw new BadUserInputError(name, `${name} must be given once`);
  return value;
};

const instant = (value: string | null, name: string): Date | null => {
  if (value === null || value === '') return null;
  try {
    // The GraphQL DateTime scalar's own parser: the same instants are accepted here and in the filter input.
    return DateTimeResolver.parseValue(value) as Date;
  } catch {
    throw new BadUserInputError(name, `${name} must be an ISO-8601 date-time such as 2026-01-02T03:04:05.678Z`);
  }
};

/**
 * Checks the export's query string (BAD_USER_INPUT naming the parameter; the route answers 400):
 * `format` ndjson (default) or csv; `since`, `until` ISO-8601; `actions` comma-separated or
 * repeated; the other filters of `AuditEventFilter` by name. An unknown parameter is refused
 * rather than silently ignored (a typo would otherwise export everything).
 */
export function exportRequest(query: Record<string, unknown>): ExportRequest {
  for (const [name, value] of Object.entries(query)) {
    if (!PARAMETERS.has(name)) throw new BadUserInputError(name.includes('\u0000') ? 'query' : name, 'unknown parameter');
    // SPEC §8: a NUL would abort the transaction at the database; it is bad input, never a 500.
    if ((Array.isArray(value) ? value : [value]).some((v) => typeof v === 'string' && v.includes('\u0000'))) throw new BadUserInputError(name, `${name} must not contain NUL characters`);
  }
  const format = single(query, 'format') ?? 'ndjson';
  if (format !== 'ndjson' && format !== 'csv') throw new BadUserInputError('format', 'format must be ndjson or csv');
  const rawActions = query.actions;
  let actions: string[] | null = null;
  if (rawActions !== undefined) {
    const list = Array.isArray(rawActions) ? rawActions : [rawActions];
    if (!list.every((a): a is string => typeof a === 'string')) throw new BadUserInputError('actions', 'actions must be a comma-separated list of action names');
    actions = list.flatMap((a) => a.split(',')).map((a) => a.trim()).filter((a) => a !== '');
  }
  try {
    return {
      format,
      filter: auditFilter({
        actions,
        actorId: single(query, 'actorId'),
        resourceType: single(query, 'resourceType'),
        resourceId: single(query, 'resourceId'),
        workspaceId: single(query, 'workspaceId'),
        since: instant(single(query, 'since'), 'since'),
        until: instant(single(query, 'until'), 'until'),
      }),
    };
  } catch (error) {
    // The filter names its fields as in the GraphQL input (filter.until); here they are parameters.
    if (error instanceof BadUserInputError) throw new BadUserInputError(error.field.replace(/^filter\./, ''), error.message.replace(/filter\./g, ''));
    throw error;
  }
}

/** A row as the export reads it: every column as text (timestamps ISO-8601 in UTC with milliseconds, JSON as its text). */
export interface ExportRow {
  id: string;
  occurred_at: string;
  action: string;
  actor_type: string;
  actor_id: string | null;
  actor_email: string | null;
  actor_name: string | null;
  organization_id: string;
  workspace_id: string | null;
  resource_type: string;
  resource_id: string | null;
  resource_name: string | null;
  changes: string | null;
  metadata: string | null;
  ip_address: string | null;
  user_agent: string | null;
  request_id: string | null;
}

const COLUMNS = `a.id::text, to_char(a.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS occurred_at, a.action, a.actor_type, a.actor_id,
  a.actor_email, a.actor_name, a.organization_id::text, a.workspace_id::text, a.resource_type, a.resource_id, a.resource_name,
  a.changes::text AS changes, a.metadata::text AS metadata, a.ip_address, a.user_agent, a.request_id`;

/** Rows fetched from the cursor at a time: what the stream holds in memory at most (a few hundred KB). */
export const EXPORT_BATCH = 500;

/**
 * The organization's events matching the filter, newest first, read from a server-side cursor
 * (`DECLARE … CURSOR`) in the caller's transaction — the request's, under the same row-level
 * security as every other read — `EXPORT_BATCH` rows at a time. The consumer pulls the next batch
 * only when it wants it (backpressure): memory stays constant whatever the trail's size.
 * Works alike on PostgreSQL and on the embedded database.
 */
export async function* auditEventBatches(query: SqlQuery, organizationId: string, filter: AuditFilter): AsyncGenerator<ExportRow[]> {
  const params: unknown[] = [organizationId];
  const conditions = auditFilterSql(filter, params);
  await query(`DECLARE audit_export NO SCROLL CURSOR FOR SELECT ${COLUMNS} FROM audit_events a WHERE a.organization_id = $1::uuid${conditions} ORDER BY a.occurred_at DESC, a.id DESC`, params);
  for (;;) {
    const rows = await query<ExportRow>(`FETCH ${EXPORT_BATCH} FROM audit_export`);
    if (rows.length > 0) yield rows;
    if (rows.length < EXPORT_BATCH) break;
  }
  await query(`CLOSE audit_export`);
}

const json = (value: string | null): string => (value === null ? 'null' : JSON.stringify(value));

/** One NDJSON line: the fields of `AuditEvent`, in the schema's order (`changes` and `metadata` as JSON objects). */
export function ndjsonLine(r: ExportRow): string {
  return (
    `{"id":${json(r.id)},"occurredAt":${json(r.occurred_at)},"action":${json(r.action)},` +
    `"actor":{"type":${json(r.actor_type)},"id":${json(r.actor_id)},"email":${json(r.actor_email)},"name":${json(r.actor_name)}},` +
    `"organizationId":${json(r.organization_id)},"workspaceId":${json(r.workspace_id)},"resourceType":${json(r.resource_type)},` +
    `"resourceId":${json(r.resource_id)},"resourceName":${json(r.resource_name)},"changes":${r.changes ?? 'null'},"metadata":${r.metadata ?? 'null'},` +
    `"ipAddress":${json(r.ip_address)},"userAgent":${json(r.user_agent)},"requestId":${json(r.request_id)}}\n`
  );
}

export const CSV_HEADER =
  'id,occurredAt,action,actorType,actorId,actorEmail,actorName,organizationId,workspaceId,resourceType,resourceId,resourceName,changes,metadata,ipAddress,userAgent,requestId\r\n';

/**
 * One CSV cell (RFC 4180): quoted when it holds a quote, comma or line break, quotes doubled. A
 * cell a spreadsheet would run as a formula (starting with = + - @, tab or carriage return) is
 * prefixed with `'` (OWASP, CSV injection): a resource name is user input.
 */
export function csvCell(value: string | null): string {
  if (value === null) return '';
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function csvLine(r: ExportRow): string {
  return (
    [
      r.id,
      r.occurred_at,
      r.action,
      r.actor_type,
      r.actor_id,
      r.actor_email,
      r.actor_name,
      r.organization_id,
      r.workspace_id,
      r.resource_type,
      r.resource_id,
      r.resource_name,
      r.changes,
      r.metadata,
      r.ip_address,
      r.user_agent,
      r.request_id,
    ]
      .map(csvCell)
      .join(',') + '\r\n'
  );
}
