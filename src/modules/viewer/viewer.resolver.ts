import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Ctx, Field, FieldResolver, ID, Info, Int, ObjectType, Query, Resolver } from 'type-graphql';
import { OrganizationConnection } from '../../common/connections';
import { NotFoundError } from '../../common/errors';
import type { ConnectionShape } from '../../common/pagination';
import type { RequestContext } from '../../context';
import { Membership } from '../membership/membership.entity';
import { Organization } from '../organization/organization.entity';
import { ORGANIZATION_LIST_COLUMNS } from '../organization/organization.loaders';
import { OrganizationService } from '../organization/organization.service';
import { User } from '../user/user.entity';

/** `me`: the authenticated user and what they belong to. */
@ObjectType('Viewer')
export class Viewer {
  @Field(() => User) user: User;
}

@Resolver(() => Viewer)
export class ViewerResolver {
  @Query(() => Viewer)
  async me(@Ctx() ctx: RequestContext): Promise<Viewer> {
    const viewer = await ctx.access.requireViewer();
    const user = await ctx.loaders.userById.load(viewer.userId);
    if (!user) throw new NotFoundError('User');
    return { user };
  }

  @FieldResolver(() => [Membership])
  async memberships(@Ctx() ctx: RequestContext): Promise<Membership[]> {
    const viewer = await ctx.access.requireViewer();
    const memberships = await ctx.loaders.membershipsOfUser.load(viewer.userId);
    // Like the organizations list: none whose security settings this token fails (Access.mayEnter).
    const enterable = await Promise.all(memberships.map((m) => ctx.access.mayEnter(m.organizationId)));
    return memberships.filter((_, i) => enterable[i]);
  }

  @FieldResolver(() => OrganizationConnection)
  organizations(
    @Ctx() ctx: RequestContext,
    @Arg('first', () => Int, { nullable: true, defaultValue: 20 }) first: number,
    @Arg('after', () => String, { nullable: true }) after?: string | null,
    @Info() info?: GraphQLResolveInfo,
  ): Promise<ConnectionShape<Organization>> {
    return new OrganizationService(ctx).listVisible(first, after, info !== undefined && ORGANIZATION_LIST_COLUMNS.serves(info, ['nodes'], ['edges', 'node']));
  }

  @FieldResolver(() => [String], { description: 'Effective permission codes of the viewer in an organization (and workspace, when given).' })
  async permissions(
    @Ctx() ctx: RequestContext,
    @Arg('organizationId', () => ID) organizationId: string,
    @Arg('workspaceId', () => ID, { nullable: true }) workspaceId?: string | null,
  ): Promise<string[]> {
    const organization = await ctx.access.organization(organizationId);
    if (!workspaceId) return [...(await ctx.access.orgPermissions(organization.id))].sort();
    const workspace = await ctx.access.workspace(workspaceId);
    if (workspace.organizationId !== organization.id) throw new NotFoundError('Workspace');
    return [...(await ctx.access.workspacePermissions(workspace))].sort();
  }
}
