import { Arg, Ctx, FieldResolver, Int, Resolver, Root } from 'type-graphql';
import { AuditEventConnection } from '../../common/connections';
import { decodeCursor, encodeCursor, pageSize, toConnection, toPage, type ConnectionShape } from '../../common/pagination';
import { hydrator } from '../../database/hydrate';
import type { RequestContext } from '../../context';
import { Organization } from '../organization/organization.entity';
import { AuditActor, AuditEvent } from './audit-event.entity';

/**
 * Newest first with keyset pagination on (occurred_at, id), which stays stable while events are
 * inserted and is served by the (organization_id, occurred_at DESC, id DESC) index.
 */
export async function listAuditEvents(ctx: RequestContext, organizationId: string, first: number | null | undefined, after: string | null | undefined): Promise<ConnectionShape<AuditEvent>> {
  const limit = pageSize(first, 50);
  const cursor = decodeCursor(after, ['timestamp', 'uuid']);
  const rows = await ctx.tx.query(
    `SELECT * FROM audit_events WHERE organization_id = $1
       AND ($2::timestamptz IS NULL OR (occurred_at, id) < ($2::timestamptz, $3::uuid))
     ORDER BY occurred_at DESC, id DESC LIMIT $4`,
    [organizationId, cursor?.[0] ?? null, cursor?.[1] ?? null, limit + 1],
  );
  const events = rows.map(hydrator(ctx.app.db.dataSource, AuditEvent));
  return toConnection(toPage(events, limit, cursor !== null, (e) => encodeCursor([e.occurredAt.toISOString(), e.id])));
}

@Resolver(() => AuditEvent)
export class AuditResolver {
  @FieldResolver(() => AuditActor)
  actor(@Root() e: AuditEvent): AuditActor {
    return { type: e.actorType, id: e.actorId, email: e.actorEmail, name: e.actorName };
  }
}

@Resolver(() => Organization)
export class OrganizationAuditResolver {
  @FieldResolver(() => AuditEventConnection, { nullable: true })
  auditEvents(
    @Root() o: Organization,
    @Ctx() ctx: RequestContext,
    @Arg('first', () => Int, { nullable: true, defaultValue: 50 }) first: number,
    @Arg('after', () => String, { nullable: true }) after?: string | null,
  ): Promise<ConnectionShape<AuditEvent>> {
    return listAuditEvents(ctx, o.id, first, after);
  }
}
