import { Arg, Ctx, FieldResolver, ID, Mutation, Resolver, Root } from 'type-graphql';
import type { RequestContext } from '../../context';
import { Organization } from '../organization/organization.entity';
import { FeatureFlagService } from './feature-flag.service';
import { FeatureFlag } from './feature-flag.types';

/** `Organization.features` (plan ∪ overrides) and `setFeatureFlag`. */
@Resolver(() => Organization)
export class FeatureFlagResolver {
  @FieldResolver(() => [FeatureFlag], { description: "The plan's features with this organization's overrides laid over them, by key." })
  features(@Root() o: Organization, @Ctx() ctx: RequestContext): Promise<FeatureFlag[]> {
    return ctx.loaders.featureFlagsByOrganization.load(o.id);
  }

  @Mutation(() => FeatureFlag)
  setFeatureFlag(
    @Ctx() ctx: RequestContext,
    @Arg('organizationId', () => ID) organizationId: string,
    @Arg('key', () => String) key: string,
    @Arg('enabled', () => Boolean) enabled: boolean,
  ): Promise<FeatureFlag> {
    return new FeatureFlagService(ctx).set(organizationId, key, enabled);
  }
}
