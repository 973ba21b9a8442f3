import { Resolver } from 'type-graphql';
import { isUuid } from '../../common/validation';
import type { RequestContext } from '../../context';
import { User } from './user.entity';

/** A user is visible to themselves and to people who share an organization with them. */
export async function visibleUser(ctx: RequestContext, id: string): Promise<User | null> {
  // A malformed id must be NOT_FOUND without reaching a ::uuid cast, which would abort the request's transaction.
  if (!isUuid(id)) return null;
  if (!(await ctx.viewer())) return null;
  // Row-level security on users answers who is visible: the viewer and the members of its organizations.
  return ctx.loaders.userById.load(id);
}

@Resolver(() => User)
export class UserResolver {}
