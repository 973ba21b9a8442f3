import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Ctx, Field, FieldResolver, ID, Info, Int, ObjectType, Query, Resolver, Root } from 'type-graphql';
import { WorkspaceConnection } from '../../common/connections';
import { keysetConnection, keysetPage, type ConnectionShape } from '../../common/pagination';
import type { RequestContext } from '../../context';
import { Organization } from '../organization/organization.entity';
import { User } from '../user/user.entity';
import { Workspace, WorkspaceRole } from './workspace.entity';
import { WORKSPACE_LIST_COLUMNS } from './workspace.loaders';
import { ENVIRONMENT_LIST_COLUMNS, type EnvironmentColumns } from '../environment/environment.loaders';
import { perSelection, selectedFields } from '../../database/projection';

@ObjectType('WorkspaceMember')
export class WorkspaceMember {
  @Field(() => User) user: User;
  @Field(() => WorkspaceRole) role: WorkspaceRole;
  @Field() grantedAt: Date;
}

@Resolver(() => Workspace)
export class WorkspaceResolver {
  @Query(() => Workspace, { nullable: true })
  workspace(@Ctx() ctx: RequestContext, @Arg('id', () => ID) id: string): Promise<Workspace> {
    return ctx.access.workspace(id);
  }

  @FieldResolver(() => Organization)
  async organization(@Root() w: Workspace, @Ctx() ctx: RequestContext): Promise<Organization> {
    return ctx.access.organization(w.organizationId);
  }

  @FieldResolver(() => [String])
  async viewerPermissions(@Root() w: Workspace, @Ctx() ctx: RequestContext): Promise<string[]> {
    return [...(await ctx.access.workspacePermissions(w))].sort();
  }

  @FieldResolver(() => [WorkspaceMember], { nullable: true })
  async members(@Root() w: Workspace, @Ctx() ctx: RequestContext): Promise<WorkspaceMember[]> {
    const grants = await ctx.loaders.grantsByWorkspace.load({ organizationId: w.organizationId, workspaceId: w.id });
    const users = await ctx.loaders.userById.loadMany(grants.map((g) => g.userId));
    return grants.flatMap((g, i) => {
      const user = users[i];
      return user && !(user instanceof Error) ? [{ user, role: g.role, grantedAt: g.grantedAt }] : [];
    });
  }
}

/**
 * Whether a page of workspaces should bring their environments along (environmentsAlong), and
 * with which of the list columns: when its nodes ask for them, the same columns their own
 * resolver would pick (ENVIRONMENT_LIST_COLUMNS, over every `environments` of the nodes). Decided
 * once per selection: graphql-js hands every organization's page the same field nodes. (Not
 * through ListColumns.serves, which remembers its verdict per field nodes for one set of paths.)
 */
const environmentsAsked = perSelection((info): EnvironmentColumns | null => {
  const nodes: ReadonlyArray<readonly string[]> = [['nodes'], ['edges', 'node']];
  if (!selectedFields(info, ...nodes).has('environments')) return null;
  return ENVIRONMENT_LIST_COLUMNS.servesAll(selectedFields(info, ...nodes.map((path) => [...path, 'environments']))) ? 'lean' : 'full';
});

@Resolver(() => Organization)
export class OrganizationWorkspacesResolver {
  /** The workspaces the viewer sees, oldest (the default one) first; batched across organizations. */
  @FieldResolver(() => WorkspaceConnection)
  async workspaces(
    @Root() o: Organization,
    @Ctx() ctx: RequestContext,
    @Arg('first', () => Int, { nullable: true, defaultValue: 20 }) first: number,
    @Arg('after', () => String, { nullable: true }) after?: string | null,
    @Info() info?: GraphQLResolveInfo,
  ): Promise<ConnectionShape<Workspace>> {
    const page = keysetPage(first, after);
    const mode = await ctx.access.workspaceVisibilityMode(o.id);
    const lean = info !== undefined && WORKSPACE_LIST_COLUMNS.serves(info, ['nodes'], ['edges', 'node']);
    const environments = info ? environmentsAsked(info) : null;
    const rows = await (lean ? ctx.loaders.leanWorkspacePage : ctx.loaders.workspacePage).load({
      ownerId: o.id,
      filter: { mode, environments },
      limit: page.limit + 1,
      after: page.after,
    });
    // Whole rows only: a lean one lacks what other fields of a workspace read.
    if (!lean) for (const w of rows) ctx.loaders.workspaceById.prime(w.id, w);
    return keysetConnection(rows, page, (w) => [w.createdAt, w.id], () => ctx.loaders.visibleWorkspaceCount.load({ ownerId: o.id, filter: mode }));
  }

  /** Nested lookup by slug: null (without an error) when there is none the viewer sees. */
  @FieldResolver(() => Workspace, { nullable: true })
  async workspace(@Root() o: Organization, @Ctx() ctx: RequestContext, @Arg('slug', () => String) slug: string): Promise<Workspace | null> {
    const found = await ctx.loaders.workspaceBySlug.load({ organizationId: o.id, slug });
    return found ? ctx.access.visibleWorkspace(found.id) : null;
  }
}
