import { Ctx, Query, Resolver } from 'type-graphql';
import type { RequestContext } from '../../context';
import { Plan } from './plan.types';

/** The plans catalogue (SPEC §5, Billing): the same for everyone, cheapest first. */
@Resolver(() => Plan)
export class PlanResolver {
  @Query(() => [Plan])
  plans(@Ctx() ctx: RequestContext): Promise<Plan[]> {
    return ctx.loaders.allPlans.load('all');
  }
}
