import { Arg, Ctx, FieldResolver, ID, Int, Query, Resolver, Root } from 'type-graphql';
import { AuditEventConnection } from '../../common/connections';
import { keysetConnection, keysetPage, type ConnectionShape } from '../../common/pagination';
import type { RequestContext } from '../../context';
import { Organization } from '../organization/organization.entity';
import { AuditActor, AuditEvent } from './audit-event.entity';
import { auditFilter, AuditEventFilterInput } from './audit.filter';

@Resolver(() => AuditEvent)
export class AuditResolver {
  @FieldResolver(() => AuditActor)
  actor(@Root() e: AuditEvent): AuditActor {
    return { type: e.actorType, id: e.actorId, email: e.actorEmail, name: e.actorName };
  }
}

/** One page of an organization's trail, newest first (input checked before any SQL: BAD_USER_INPUT). */
async function auditEventsOf(ctx: RequestContext, organizationId: string, filter: AuditEventFilterInput | null | undefined, first: number, after: string | null | undefined): Promise<ConnectionShape<AuditEvent>> {
  const page = keysetPage(first, after, 50);
  const checked = auditFilter(filter);
  const rows = await ctx.loaders.auditPage.load({ ownerId: organizationId, limit: page.limit + 1, after: page.after, filter: checked });
  return keysetConnection(rows, page, (e) => [e.occurredAt, e.id]);
}

@Resolver()
export class AuditQueryResolver {
  /** The operation guard (org.audit.view on `organizationId`) has found the organization visible. */
  @Query(() => AuditEventConnection)
  async auditEvents(
    @Ctx() ctx: RequestContext,
    @Arg('organizationId', () => ID) organizationId: string,
    @Arg('filter', () => AuditEventFilterInput, { nullable: true }) filter: AuditEventFilterInput | null,
    @Arg('first', () => Int, { nullable: true, defaultValue: 50 }) first: number,
    @Arg('after', () => String, { nullable: true }) after?: string | null,
  ): Promise<ConnectionShape<AuditEvent>> {
    const organization = await ctx.access.organization(organizationId, 'org.audit.view');
    return auditEventsOf(ctx, organization.id, filter, first, after);
  }
}

@Resolver(() => Organization)
export class OrganizationAuditResolver {
  @FieldResolver(() => AuditEventConnection, { nullable: true })
  async auditEvents(
    @Root() o: Organization,
    @Ctx() ctx: RequestContext,
    @Arg('filter', () => AuditEventFilterInput, { nullable: true }) filter: AuditEventFilterInput | null,
    @Arg('first', () => Int, { nullable: true, defaultValue: 50 }) first: number,
    @Arg('after', () => String, { nullable: true }) after?: string | null,
  ): Promise<ConnectionShape<AuditEvent>> {
    return auditEventsOf(ctx, o.id, filter, first, after);
  }
}
