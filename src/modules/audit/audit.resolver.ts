import { Arg, Ctx, FieldResolver, Int, Resolver, Root } from 'type-graphql';
import { AuditEventConnection } from '../../common/connections';
import { keysetConnection, keysetPage, type ConnectionShape } from '../../common/pagination';
import type { RequestContext } from '../../context';
import { Organization } from '../organization/organization.entity';
import { AuditActor, AuditEvent } from './audit-event.entity';

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
  async auditEvents(
    @Root() o: Organization,
    @Ctx() ctx: RequestContext,
    @Arg('first', () => Int, { nullable: true, defaultValue: 50 }) first: number,
    @Arg('after', () => String, { nullable: true }) after?: string | null,
  ): Promise<ConnectionShape<AuditEvent>> {
    const page = keysetPage(first, after, 50);
    const rows = await ctx.loaders.auditPage.load({ ownerId: o.id, limit: page.limit + 1, after: page.after, filter: null });
    return keysetConnection(rows, page, (e) => [e.occurredAt, e.id]);
  }
}
