import type { SqlQuery } from '../../database/tenant-transaction';
import { ActorType } from './audit-event.entity';

export interface AuditActorRef {
  type: ActorType;
  id: string | null;
  email: string | null;
  name: string | null;
}

export interface RequestOrigin {
  ipAddress: string | null;
  userAgent: string | null;
  requestId: string;
}

export interface AuditEntry {
  organizationId: string;
  action: string;
  resourceType: string;
  resourceId?: string | null;
  resourceName?: string | null;
  workspaceId?: string | null;
  changes?: AuditChanges | null;
  metadata?: Record<string, unknown> | null;
}

export interface AuditChanges {
  changedFields: string[];
  oldValues: Record<string, unknown>;
  newValues: Record<string, unknown>;
}

/** The `changes` of an update that changed nothing (still audited: someone asked for it). */
export const NO_CHANGES: AuditChanges = Object.freeze({ changedFields: [], oldValues: {}, newValues: {} });

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/**
 * `{ changedFields, oldValues, newValues }` of exactly the fields that changed (null when none).
 * Write-only fields (credentials) are passed as `redacted` so that only their name appears.
 */
export function diffChanges(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  fields: readonly string[],
  redacted: readonly string[] = [],
): AuditChanges | null {
  const changedFields = fields.filter((f) => !same(before[f], after[f]));
  if (changedFields.length === 0) return null;
  const pick = (source: Record<string, unknown>) =>
    Object.fromEntries(changedFields.map((f) => [f, redacted.includes(f) ? (source[f] == null ? null : '[redacted]') : (source[f] ?? null)]));
  return { changedFields, oldValues: pick(before), newValues: pick(after) };
}

/**
 * The one audit writer. It inserts in the request's transaction, inside the mutation's
 * savepoint: the event is stored exactly when the change is.
 */
export class AuditWriter {
  constructor(
    private readonly query: SqlQuery,
    private readonly actor: () => AuditActorRef,
    private readonly origin: RequestOrigin,
  ) {}

  async record(entry: AuditEntry): Promise<void> {
    const actor = this.actor();
    await this.query(
      `INSERT INTO audit_events (organization_id, action, actor_type, actor_id, actor_email, actor_name, workspace_id,
         resource_type, resource_id, resource_name, changes, metadata, ip_address, user_agent, request_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
      [
        entry.organizationId,
        entry.action,
        actor.type,
        actor.id,
        actor.email,
        actor.name,
        entry.workspaceId ?? null,
        entry.resourceType,
        entry.resourceId ?? null,
        entry.resourceName ?? null,
        entry.changes ? JSON.stringify(entry.changes) : null,
        entry.metadata ? JSON.stringify(entry.metadata) : null,
        this.origin.ipAddress,
        this.origin.userAgent,
        this.origin.requestId,
      ],
    );
  }
}
