import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Ctx, FieldResolver, ID, Info, Query, Resolver, Root } from 'type-graphql';
import { found } from '../../common/errors';
import { andThen, loadNow } from '../../database/loader-helpers';
import type { RequestContext } from '../../context';
import { Organization } from '../organization/organization.entity';
import { Workspace } from '../workspace/workspace.entity';
import { Environment, EnvironmentResources, EnvironmentTier } from './environment.entity';
import { ENVIRONMENT_LIST_COLUMNS } from './environment.loaders';

const isActive = (e: Environment): boolean => e.isActive;

@Resolver(() => Environment)
export class EnvironmentResolver {
  @Query(() => Environment, { nullable: true })
  async environment(@Ctx() ctx: RequestContext, @Arg('id', () => ID) id: string): Promise<Environment> {
    return (await ctx.access.environment(id)).environment;
  }

  @FieldResolver(() => Workspace)
  async workspace(@Root() e: Environment, @Ctx() ctx: RequestContext): Promise<Workspace> {
    return found(await ctx.access.visibleWorkspace(e.workspaceId), 'Workspace');
  }

  @FieldResolver(() => Organization)
  async organization(@Root() e: Environment, @Ctx() ctx: RequestContext): Promise<Organization> {
    return ctx.access.organization(e.organizationId);
  }

  @FieldResolver(() => EnvironmentResources)
  resources(@Root() e: Environment): EnvironmentResources {
    return { cpu: e.cpu, ramMb: e.ramMb, diskGb: e.diskGb };
  }
}

@Resolver(() => Workspace)
export class WorkspaceEnvironmentsResolver {
  /** Active environments, oldest first; destroyed ones only with includeDestroyed. Batched across workspaces. */
  @FieldResolver(() => [Environment])
  environments(
    @Root() w: Workspace,
    @Ctx() ctx: RequestContext,
    @Arg('tier', () => EnvironmentTier, { nullable: true }) tier?: EnvironmentTier | null,
    @Arg('includeDestroyed', () => Boolean, { nullable: true, defaultValue: false }) includeDestroyed?: boolean | null,
    @Info() info?: GraphQLResolveInfo,
  ): Environment[] | Promise<Environment[]> {
    const loader = info && ENVIRONMENT_LIST_COLUMNS.serves(info) ? ctx.loaders.leanEnvironmentsByWorkspace : ctx.loaders.environmentsByWorkspace;
    // Read along with a page of workspaces (primed): answered at once, not as a promise.
    return andThen(loadNow(loader, { organizationId: w.organizationId, workspaceId: w.id }), (all) => {
      // Most lists keep every environment: the loader's own array then, not a copy per workspace.
      if (!tier && (includeDestroyed || all.every(isActive))) return all;
      return all.filter((e) => (includeDestroyed || e.isActive) && (!tier || e.tier === tier));
    });
  }

  /** Nested lookup by slug among active environments: null (without an error) when there is none. */
  @FieldResolver(() => Environment, { nullable: true })
  async environment(@Root() w: Workspace, @Ctx() ctx: RequestContext, @Arg('slug', () => String) slug: string): Promise<Environment | null> {
    const all = await ctx.loaders.environmentsByWorkspace.load({ organizationId: w.organizationId, workspaceId: w.id });
    return all.find((e) => e.isActive && e.slug === slug.toLowerCase()) ?? null;
  }
}
