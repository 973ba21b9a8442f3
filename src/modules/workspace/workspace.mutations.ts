import { Arg, Ctx, ID, Mutation, Resolver } from 'type-graphql';
import type { RequestContext } from '../../context';
import { Workspace, WorkspaceRole } from './workspace.entity';
import { CreateWorkspaceInput, UpdateWorkspaceInput } from './workspace.inputs';
import { WorkspaceService } from './workspace.service';

/** Workspace mutations: each reads its arguments and calls one WorkspaceService method. */
@Resolver(() => Workspace)
export class WorkspaceMutationResolver {
  @Mutation(() => Workspace)
  createWorkspace(
    @Ctx() ctx: RequestContext,
    @Arg('organizationId', () => ID) organizationId: string,
    @Arg('input', () => CreateWorkspaceInput) input: CreateWorkspaceInput,
  ): Promise<Workspace> {
    return new WorkspaceService(ctx).create(organizationId, input);
  }

  @Mutation(() => Workspace)
  updateWorkspace(
    @Ctx() ctx: RequestContext,
    @Arg('id', () => ID) id: string,
    @Arg('input', () => UpdateWorkspaceInput) input: UpdateWorkspaceInput,
  ): Promise<Workspace> {
    return new WorkspaceService(ctx).update(id, input);
  }

  @Mutation(() => Boolean)
  deleteWorkspace(@Ctx() ctx: RequestContext, @Arg('id', () => ID) id: string): Promise<boolean> {
    return new WorkspaceService(ctx).delete(id);
  }

  @Mutation(() => Workspace)
  setWorkspaceMemberRole(
    @Ctx() ctx: RequestContext,
    @Arg('workspaceId', () => ID) workspaceId: string,
    @Arg('userId', () => ID) userId: string,
    @Arg('role', () => WorkspaceRole, { nullable: true }) role?: WorkspaceRole | null,
  ): Promise<Workspace> {
    return new WorkspaceService(ctx).setMemberRole(workspaceId, userId, role ?? null);
  }
}
