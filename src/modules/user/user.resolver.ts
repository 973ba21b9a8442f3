import { Resolver } from 'type-graphql';
import type { RequestContext } from '../../context';
import { User } from './user.entity';

/** A user is visible to themselves and to people who share an organization with them. */
export async function visibleUser(ctx: RequestContext, id: string): Promise<User | null> {
  const viewer = await ctx.viewer();
  if (!viewer) return null;
  if (id !== viewer.userId && !(await ctx.loaders.visibleUserIds.load(id))) return null;
  return ctx.loaders.userById.load(id);
}

@Resolver(() => User)
export class UserResolver {}
