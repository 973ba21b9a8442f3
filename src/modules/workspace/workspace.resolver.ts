import { Arg, Ctx, Field, FieldResolver, ID, Int, ObjectType, Query, Resolver, Root } from 'type-graphql';
import { WorkspaceConnection } from '../../common/connections';
import { found } from '../../common/errors';
import { decodeCursor, encodeCursor, pageSize, toConnection, toPage, type ConnectionShape } from '../../common/pagination';
import { SEES_RESTRICTED_WORKSPACES } from '../../authz/permissions';
import type { RequestContext } from '../../context';
import { Organization } from '../organization/organization.entity';
import { User } from '../user/user.entity';
import { Workspace, WorkspaceRole } from './workspace.entity';
import type { WorkspaceVisibilityMode } from './workspace.loaders';

@ObjectType('WorkspaceMember')
export class WorkspaceMember {
  @Field(() => User) user: User;
  @Field(() => WorkspaceRole) role: WorkspaceRole;
  @Field() grantedAt: Date;
}

async function visibilityMode(ctx: RequestContext, organizationId: string): Promise<WorkspaceVisibilityMode> {
  const role = await ctx.access.roleIn(organizationId);
  if (role && SEES_RESTRICTED_WORKSPACES.includes(role)) return 'all';
  return (await ctx.access.orgPermissions(organizationId)).has('workspace.view') ? 'organization' : 'grants';
}

@Resolver(() => Workspace)
export class WorkspaceResolver {
  @Query(() => Workspace, { nullable: true })
  workspace(@Ctx() ctx: RequestContext, @Arg('id', () => ID) id: string): Promise<Workspace> {
    return ctx.access.workspace(id);
  }

  @FieldResolver(() => Organization)
  async organization(@Root() w: Workspace, @Ctx() ctx: RequestContext): Promise<Organization> {
    return found(await ctx.loaders.organizationById.load(w.organizationId), 'Organization');
  }

  @FieldResolver(() => [String])
  async viewerPermissions(@Root() w: Workspace, @Ctx() ctx: RequestContext): Promise<string[]> {
    return [...(await ctx.access.workspacePermissions(w))].sort();
  }

  @FieldResolver(() => [WorkspaceMember], { nullable: true })
  async members(@Root() w: Workspace, @Ctx() ctx: RequestContext): Promise<WorkspaceMember[]> {
    const rows = await ctx.tx.query<{ user_id: string; role: WorkspaceRole; granted_at: Date }>(
      `SELECT user_id, role, granted_at FROM workspace_members WHERE organization_id = $1 AND workspace_id = $2 ORDER BY granted_at, user_id`,
      [w.organizationId, w.id],
    );
    const users = await ctx.loaders.userById.loadMany(rows.map((r) => r.user_id));
    return rows.flatMap((r, i) => {
      const user = users[i];
      return user && !(user instanceof Error) ? [{ user, role: r.role, grantedAt: new Date(r.granted_at) }] : [];
    });
  }
}

@Resolver(() => Organization)
export class OrganizationWorkspacesResolver {
  /** The workspaces the viewer sees, oldest (the default one) first; batched across organizations. */
  @FieldResolver(() => WorkspaceConnection)
  async workspaces(
    @Root() o: Organization,
    @Ctx() ctx: RequestContext,
    @Arg('first', () => Int, { nullable: true, defaultValue: 20 }) first: number,
    @Arg('after', () => String, { nullable: true }) after?: string | null,
  ): Promise<ConnectionShape<Workspace>> {
    const limit = pageSize(first);
    const cursor = decodeCursor(after, ['timestamp', 'uuid']) as [string, string] | null;
    const mode = await visibilityMode(ctx, o.id);
    const rows = await ctx.loaders.workspacePage.load({ organizationId: o.id, mode, limit: limit + 1, after: cursor });
    for (const w of rows) ctx.loaders.workspaceById.prime(w.id, w);
    return toConnection(
      toPage(rows, limit, cursor !== null, (w) => encodeCursor([w.createdAt.toISOString(), w.id]), () =>
        ctx.loaders.visibleWorkspaceCount.load({ organizationId: o.id, mode }),
      ),
    );
  }

  /** Nested lookup by slug: null (without an error) when there is none the viewer sees. */
  @FieldResolver(() => Workspace, { nullable: true })
  async workspace(@Root() o: Organization, @Ctx() ctx: RequestContext, @Arg('slug', () => String) slug: string): Promise<Workspace | null> {
    const found = await ctx.loaders.workspaceBySlug.load({ organizationId: o.id, slug });
    return found ? ctx.access.visibleWorkspace(found.id) : null;
  }
}
