import { Arg, Ctx, ID, Mutation, Resolver } from 'type-graphql';
import type { RequestContext } from '../../context';
import { Environment } from './environment.entity';
import { CreateEnvironmentInput, UpdateEnvironmentInput } from './environment.inputs';
import { EnvironmentService } from './environment.service';

/** Environment mutations: each reads its arguments and calls one EnvironmentService method. */
@Resolver(() => Environment)
export class EnvironmentMutationResolver {
  @Mutation(() => Environment)
  createEnvironment(
    @Ctx() ctx: RequestContext,
    @Arg('workspaceId', () => ID) workspaceId: string,
    @Arg('input', () => CreateEnvironmentInput) input: CreateEnvironmentInput,
  ): Promise<Environment> {
    return new EnvironmentService(ctx).create(workspaceId, input);
  }

  @Mutation(() => Environment)
  updateEnvironment(
    @Ctx() ctx: RequestContext,
    @Arg('id', () => ID) id: string,
    @Arg('input', () => UpdateEnvironmentInput) input: UpdateEnvironmentInput,
  ): Promise<Environment> {
    return new EnvironmentService(ctx).update(id, input);
  }

  @Mutation(() => Environment)
  destroyEnvironment(@Ctx() ctx: RequestContext, @Arg('id', () => ID) id: string): Promise<Environment> {
    return new EnvironmentService(ctx).destroy(id);
  }
}
