import { randomUUID } from 'node:crypto';
import type { TestApp } from '../../helpers/app';
import { readAll } from '../../helpers/db';

/** An audit row as the tests write it straight into the table (as the benchmark seeds it, not through the API). */
export interface SeedEvent {
  id?: string;
  occurredAt: Date;
  action: string;
  actorType?: 'USER' | 'API_KEY' | 'SYSTEM';
  actorId?: string | null;
  actorEmail?: string | null;
  workspaceId?: string | null;
  resourceType: string;
  resourceId?: string | null;
  resourceName?: string | null;
  changes?: Record<string, unknown> | null;
  metadata?: Record<string, unknown> | null;
}

/** Inserts events of one organization on a connection that sees every row; returns their ids in the order given. */
export async function seedEvents(app: TestApp, organizationId: string, events: SeedEvent[]): Promise<string[]> {
  const ids = events.map((e) => e.id ?? randomUUID());
  await readAll(
    app,
    `INSERT INTO audit_events (organization_id, id, occurred_at, action, actor_type, actor_id, actor_email, workspace_id, resource_type, resource_id, resource_name, changes, metadata)
     SELECT $1, x.id, x.occurred_at, x.action, x.actor_type, x.actor_id, x.actor_email, x.workspace_id, x.resource_type, x.resource_id, x.resource_name, x.changes, x.metadata
     FROM jsonb_to_recordset($2::jsonb) AS x(id uuid, occurred_at timestamptz, action text, actor_type text, actor_id text, actor_email text, workspace_id uuid,
       resource_type text, resource_id text, resource_name text, changes jsonb, metadata jsonb)`,
    [
      organizationId,
      JSON.stringify(
        events.map((e, i) => ({
          id: ids[i],
          occurred_at: e.occurredAt.toISOString(),
          action: e.action,
          actor_type: e.actorType ?? (e.actorId ? 'USER' : 'SYSTEM'),
          actor_id: e.actorId ?? null,
          actor_email: e.actorEmail ?? null,
          workspace_id: e.workspaceId ?? null,
          resource_type: e.resourceType,
          resource_id: e.resourceId ?? null,
          resource_name: e.resourceName ?? null,
          changes: e.changes ?? null,
          metadata: e.metadata ?? null,
        })),
      ),
    ],
  );
  return ids;
}

export const AUDIT_QUERY = `query($org: ID!, $filter: AuditEventFilter, $first: Int, $after: String) {
  auditEvents(organizationId: $org, filter: $filter, first: $first, after: $after) {
    edges { cursor node { id } }
    nodes { id occurredAt action actor { type id email name } organizationId workspaceId resourceType resourceId resourceName changes metadata }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`;

export interface AuditNode {
  id: string;
  occurredAt: string;
  action: string;
  actor: { type: string; id: string | null; email: string | null; name: string | null };
  organizationId: string;
  workspaceId: string | null;
  resourceType: string;
  resourceId: string | null;
  resourceName: string | null;
  changes: unknown;
  metadata: unknown;
  ipAddress?: string | null;
  userAgent?: string | null;
  requestId?: string | null;
}
