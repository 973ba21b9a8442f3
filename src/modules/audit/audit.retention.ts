import type { JobKind } from '../../jobs/scheduler';

/** The job's name: its system actor (`job:audit_retention`), its request ids and its log lines. */
export const AUDIT_RETENTION_JOB = 'audit_retention';

/**
 * Events deleted per organization and run, oldest first (the function caps it at 10 000 too): a
 * backlog — after a downgrade to a plan keeping fewer days — drains over successive runs, each a
 * short transaction.
 */
export const AUDIT_RETENTION_BATCH = 10_000;

/**
 * Retention of the audit trail (SPEC §5): deletes the events older than the organization's plan's
 * `auditRetentionDays` (ENTERPRISE: null, kept forever), compared with the database's now(). The
 * due lookup and the deletion are SECURITY DEFINER functions of migration 1765400000000-audit-api,
 * owned by a role the database lets delete only expired events in the transaction's scope; the
 * service's own role has no DELETE on the audit trail. The prune is recorded in the structured log
 * (an audit event would itself age out, and record nothing an auditor needs).
 */
export const auditRetentionJob: JobKind = {
  kind: AUDIT_RETENTION_JOB,
  dueFunction: 'app_due_audit_retention',
  async run(ctx) {
    if (ctx.principal.kind !== 'system') throw new Error('audit retention runs with the system principal of one organization');
    const organizationId = ctx.principal.organizationId;
    const [row] = await ctx.tx.query<{ pruned: number }>(`SELECT app_prune_audit_events($1, $2) AS pruned`, [organizationId, AUDIT_RETENTION_BATCH]);
    const pruned = Number(row?.pruned ?? 0);
    if (pruned > 0) ctx.app.logger.info({ event: 'audit.pruned', job: AUDIT_RETENTION_JOB, requestId: ctx.requestId, organizationId, pruned }, 'expired audit events pruned');
    return pruned;
  },
};
