import { Arg, Ctx, FieldResolver, ID, Mutation, Resolver, Root } from 'type-graphql';
import { NotFoundError } from '../../common/errors';
import { isUuid } from '../../common/validation';
import type { RequestContext } from '../../context';
import { Organization } from '../organization/organization.entity';
import { OrganizationStatus } from '../organization/organization.types';
import { Plan, PlanKey, PlanLimits } from './plan.types';
import { SubscriptionService } from './subscription.service';
import { BillingInterval, Subscription, SubscriptionStatus } from './subscription.types';

/**
 * SPEC §5: DELETED while soft-deleted, SUSPENDED while the subscription is SUSPENDED, ACTIVE
 * otherwise (an EXPIRED subscription makes the organization read-only, not suspended).
 */
export async function organizationStatus(ctx: RequestContext, o: Organization): Promise<OrganizationStatus> {
  if (o.status === OrganizationStatus.DELETED) return OrganizationStatus.DELETED;
  const subscription = await ctx.loaders.subscriptionByOrganization.load(o.id);
  return subscription?.status === SubscriptionStatus.SUSPENDED ? OrganizationStatus.SUSPENDED : OrganizationStatus.ACTIVE;
}

/** A subscription reference from another service (federation), with the same check as Organization.subscription: NOT_FOUND otherwise. */
export async function subscriptionReference(ctx: RequestContext, id: unknown): Promise<Subscription> {
  await ctx.access.requirePrincipal();
  const subscription = isUuid(id) ? await ctx.loaders.subscriptionById.load(id) : null;
  if (!subscription || !(await ctx.access.visibleOrganization(subscription.organizationId))) throw new NotFoundError('Subscription');
  const permissions = await ctx.access.orgPermissions(subscription.organizationId);
  if (!permissions.has('org.view') || !permissions.has('org.billing.view')) throw new NotFoundError('Subscription');
  return subscription;
}

/** Organization.subscription (org.billing.view, a field guard) and Organization.status. */
@Resolver(() => Organization)
export class OrganizationSubscriptionResolver {
  @FieldResolver(() => Subscription, { nullable: true })
  subscription(@Ctx() ctx: RequestContext, @Root() o: Organization): Promise<Subscription | null> {
    return ctx.loaders.subscriptionByOrganization.load(o.id);
  }

  @FieldResolver(() => OrganizationStatus)
  status(@Ctx() ctx: RequestContext, @Root() o: Organization): Promise<OrganizationStatus> {
    return organizationStatus(ctx, o);
  }
}

@Resolver(() => Subscription)
export class SubscriptionResolver {
  @FieldResolver(() => Organization)
  async organization(@Ctx() ctx: RequestContext, @Root() s: Subscription): Promise<Organization> {
    const organization = await ctx.loaders.organizationById.load(s.organizationId);
    if (!organization) throw new NotFoundError('Organization');
    return organization;
  }

  @FieldResolver(() => Plan)
  async plan(@Ctx() ctx: RequestContext, @Root() s: Subscription): Promise<Plan> {
    return (await ctx.loaders.planByKey.load(s.planKey))!;
  }

  @FieldResolver(() => Plan, { nullable: true, description: 'A downgrade waiting for the end of the current period.' })
  async scheduledPlan(@Ctx() ctx: RequestContext, @Root() s: Subscription): Promise<Plan | null> {
    return s.scheduledPlanKey ? ctx.loaders.planByKey.load(s.scheduledPlanKey) : null;
  }

  /** No per-organization limit overrides exist yet: the plan's limits. */
  @FieldResolver(() => PlanLimits, { description: "The plan's limits with this organization's overrides applied." })
  async effectiveLimits(@Ctx() ctx: RequestContext, @Root() s: Subscription): Promise<PlanLimits> {
    return (await ctx.loaders.planByKey.load(s.planKey))!.limits;
  }

  @Mutation(() => Subscription)
  changePlan(
    @Ctx() ctx: RequestContext,
    @Arg('organizationId', () => ID) organizationId: string,
    @Arg('plan', () => PlanKey) plan: PlanKey,
    @Arg('billingInterval', () => BillingInterval, { nullable: true }) billingInterval?: BillingInterval | null,
  ): Promise<Subscription> {
    return new SubscriptionService(ctx).changePlan(organizationId, plan, billingInterval);
  }

  @Mutation(() => Subscription)
  cancelSubscription(
    @Ctx() ctx: RequestContext,
    @Arg('organizationId', () => ID) organizationId: string,
    @Arg('atPeriodEnd', () => Boolean, { nullable: true, defaultValue: true }) atPeriodEnd: boolean | null,
  ): Promise<Subscription> {
    return new SubscriptionService(ctx).cancel(organizationId, atPeriodEnd ?? true);
  }

  @Mutation(() => Subscription)
  resumeSubscription(@Ctx() ctx: RequestContext, @Arg('organizationId', () => ID) organizationId: string): Promise<Subscription> {
    return new SubscriptionService(ctx).resume(organizationId);
  }
}
