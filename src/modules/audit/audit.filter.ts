import { Field, ID, InputType } from 'type-graphql';
import { BadUserInputError } from '../../common/errors';
import { isUuid } from '../../common/validation';

/** `Query.auditEvents` / `Organization.auditEvents` / the export: every given criterion must hold (AND). */
@InputType('AuditEventFilter')
export class AuditEventFilterInput {
  @Field(() => [String], { nullable: true }) actions?: string[] | null;
  @Field(() => ID, { nullable: true }) actorId?: string | null;
  @Field(() => String, { nullable: true }) resourceType?: string | null;
  @Field(() => ID, { nullable: true }) resourceId?: string | null;
  @Field(() => ID, { nullable: true }) workspaceId?: string | null;
  @Field(() => Date, { nullable: true }) since?: Date | null;
  @Field(() => Date, { nullable: true }) until?: Date | null;
}

/** A validated filter: null criteria are absent. `since` is inclusive, `until` exclusive. */
export interface AuditFilter {
  actions: string[] | null;
  actorId: string | null;
  resourceType: string | null;
  resourceId: string | null;
  workspaceId: string | null;
  since: Date | null;
  until: Date | null;
}

/** At most this many actions in one filter (a list of ORs is planned as one `= ANY`). */
export const MAX_FILTER_ACTIONS = 50;
/** `organization.created`, `api_key.revoked`, `env.deployed`… */
const ACTION = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$/;
const MAX_TEXT = 200;

const text = (value: string | null | undefined, field: string): string | null => {
  if (value === null || value === undefined) return null;
  if (value.length < 1 || value.length > MAX_TEXT) throw new BadUserInputError(`filter.${field}`, `filter.${field} must be 1–${MAX_TEXT} characters`);
  return value;
};

/**
 * Checks a filter (BAD_USER_INPUT naming `filter.<field>` otherwise) and returns it normalized:
 * actions deduplicated, empty criteria absent. Nothing invalid reaches SQL (a malformed
 * workspace id would abort the request's transaction at its `::uuid` cast).
 */
export function auditFilter(input: AuditEventFilterInput | null | undefined): AuditFilter {
  const f = input ?? {};
  let actions: string[] | null = null;
  if (f.actions !== null && f.actions !== undefined) {
    if (f.actions.length === 0) throw new BadUserInputError('filter.actions', 'filter.actions must name at least one action (omit it for all)');
    if (f.actions.length > MAX_FILTER_ACTIONS) throw new BadUserInputError('filter.actions', `filter.actions takes at most ${MAX_FILTER_ACTIONS} actions`);
    for (const a of f.actions) {
      if (a.length > 100 || !ACTION.test(a)) throw new BadUserInputError('filter.actions', 'filter.actions holds something that is not an action name such as workspace.created');
    }
    actions = [...new Set(f.actions)];
  }
  const workspaceId = f.workspaceId ?? null;
  if (workspaceId !== null && !isUuid(workspaceId)) throw new BadUserInputError('filter.workspaceId', 'filter.workspaceId must be a workspace id');
  const since = f.since ?? null;
  const until = f.until ?? null;
  if (since && until && since.getTime() > until.getTime()) throw new BadUserInputError('filter.until', 'filter.until must not be before filter.since');
  return {
    actions,
    actorId: text(f.actorId, 'actorId'),
    resourceType: text(f.resourceType, 'resourceType'),
    resourceId: text(f.resourceId, 'resourceId'),
    workspaceId,
    since,
    until,
  };
}

/**
 * The filter's SQL conditions on the audit table aliased `a` (each one `AND …`), appending their
 * values to `params`. Only the criteria given appear in the text: each combination is its own
 * prepared statement, planned for exactly those conditions (no `$n IS NULL OR …` that a generic
 * plan could not use an index for).
 */
export function auditFilterSql(filter: AuditFilter, params: unknown[]): string {
  const parts: string[] = [];
  const param = (value: unknown, cast: string) => {
    params.push(value);
    return `$${params.length}::${cast}`;
  };
  if (filter.actions) parts.push(`a.action = ANY (${param(filter.actions, 'text[]')})`);
  if (filter.actorId !== null) parts.push(`a.actor_id = ${param(filter.actorId, 'text')}`);
  if (filter.resourceType !== null) parts.push(`a.resource_type = ${param(filter.resourceType, 'text')}`);
  if (filter.resourceId !== null) parts.push(`a.resource_id = ${param(filter.resourceId, 'text')}`);
  if (filter.workspaceId !== null) parts.push(`a.workspace_id = ${param(filter.workspaceId, 'uuid')}`);
  if (filter.since) parts.push(`a.occurred_at >= ${param(filter.since.toISOString(), 'timestamptz')}`);
  if (filter.until) parts.push(`a.occurred_at < ${param(filter.until.toISOString(), 'timestamptz')}`);
  return parts.map((p) => ` AND ${p}`).join('');
}
