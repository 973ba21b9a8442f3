import { Ctx, FieldResolver, Resolver, Root } from 'type-graphql';
import type { RequestContext } from '../../context';
import { Organization } from '../organization/organization.entity';
import { QuotaChecker } from './quota.checker';
import { Quota } from './quota.types';

/** `Organization.quota` (org.view, the `*` of Organization): the checker's own counts and the plan's limits. */
@Resolver(() => Organization)
export class OrganizationQuotaResolver {
  @FieldResolver(() => Quota, { description: 'Usage of every plan-limited resource, its limit (null: unlimited) and level.' })
  async quota(@Root() o: Organization, @Ctx() ctx: RequestContext): Promise<Quota> {
    return Object.assign(new Quota(), { resources: await new QuotaChecker(ctx).usage(o.id) });
  }
}
