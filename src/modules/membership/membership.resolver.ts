import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Ctx, Field, FieldResolver, Info, Int, ObjectType, Query, Resolver, Root } from 'type-graphql';
import { MembershipConnection } from '../../common/connections';
import { found } from '../../common/errors';
import { andThen, loadNow } from '../../database/loader-helpers';
import { perSelection, selectedFields } from '../../database/projection';
import type { ConnectionShape } from '../../common/pagination';
import { isPermission, PERMISSION_CATALOG, systemRole } from '../../authz/permissions';
import type { RequestContext } from '../../context';
import { Organization } from '../organization/organization.entity';
import { User } from '../user/user.entity';
import { USER_LIST_COLUMNS } from '../user/user.loaders';
import { visibleUser } from '../user/user.resolver';
import { Membership } from './membership.entity';
import { MembershipService } from './membership.service';
import { Role } from './role.entity';

/** What of a role the membership's own role key answers. */
const KEY_FIELDS: ReadonlySet<string> = new Set(['key', '__typename']);
const keyAlone = (fields: Iterable<string>): boolean => {
  for (const field of fields) if (!KEY_FIELDS.has(field)) return false;
  return true;
};
/** Whether a membership's `role` selection asks for the role's key alone. */
const roleKeyAlone = perSelection((info) => keyAlone(selectedFields(info)));
/** Whether no `role` under a page of members (nodes and edges.node) asks for more than the key: the page then reads no role. */
const pageRoleKeysAlone = perSelection((info) => keyAlone(selectedFields(info, ['nodes', 'role'], ['edges', 'node', 'role'])));

/**
 * The role a membership names, known by its key alone (the fields KEY_FIELDS lists). The
 * membership references it by a tenant-carrying foreign key, so it exists, in the membership's
 * organization. The key is the membership's own data: a viewer's own membership in an
 * organization joined after the request's scope was opened (a parallel request committed it)
 * shows its key, where the role's row — outside the scope — answered NOT_FOUND; the
 * organization itself stays NOT_FOUND there. Handed only to the selection that was checked,
 * never primed into roleByKey.
 */
const roleNamedBy = (m: Membership): Role => Object.assign(new Role(), { organizationId: m.organizationId, key: m.roleKey });

@ObjectType('Permission')
export class PermissionInfo {
  @Field() code: string;
  @Field() description: string;
}

@Resolver(() => Role)
export class RoleResolver {
  /** System roles take their permissions from the matrix; custom roles from their row. */
  @FieldResolver(() => [String])
  permissions(@Root() role: Role): string[] {
    const system = role.isSystem ? systemRole(role.key) : undefined;
    return system ? [...system.permissions] : role.storedPermissions.filter(isPermission);
  }

  @Query(() => [PermissionInfo])
  permissionCatalog(): PermissionInfo[] {
    return PERMISSION_CATALOG.map((p) => ({ code: p.code, description: p.description }));
  }
}

@Resolver(() => Membership)
export class MembershipResolver {
  @FieldResolver(() => Organization)
  async organization(@Root() m: Membership, @Ctx() ctx: RequestContext): Promise<Organization> {
    return ctx.access.organization(m.organizationId);
  }

  // A page of members brings each one's user and role along (primed): answered at once, not as a
  // promise. The user from leanUserById when the lean columns serve this selection (the page of
  // members decided the same over every `user` of its nodes, and primed it; outside a page it
  // answers the whole user), from userById otherwise.
  @FieldResolver(() => User)
  user(@Root() m: Membership, @Ctx() ctx: RequestContext, @Info() info?: GraphQLResolveInfo): User | Promise<User> {
    const loader = info && USER_LIST_COLUMNS.serves(info) ? ctx.loaders.leanUserById : ctx.loaders.userById;
    return andThen(loadNow(loader, m.userId), (user) => found(user, 'User'));
  }

  // Its key alone is the membership's own (no statement, nothing to wait for); any other field of
  // the role comes from roleByKey (primed by a page of members that read roles along).
  @FieldResolver(() => Role)
  role(@Root() m: Membership, @Ctx() ctx: RequestContext, @Info() info?: GraphQLResolveInfo): Role | Promise<Role> {
    if (info && roleKeyAlone(info)) return roleNamedBy(m);
    return andThen(loadNow(ctx.loaders.roleByKey, { organizationId: m.organizationId, key: m.roleKey }), (role) => found(role, 'Role'));
  }

  @FieldResolver(() => User, { nullable: true })
  async invitedBy(@Root() m: Membership, @Ctx() ctx: RequestContext): Promise<User | null> {
    // Only when the inviter is still someone the viewer may see.
    return m.invitedBy ? visibleUser(ctx, m.invitedBy) : null;
  }
}

@Resolver(() => Organization)
export class OrganizationMembersResolver {
  /** Members oldest first; `roleKey` filters by role, `search` matches name or email (case-insensitive). */
  @FieldResolver(() => MembershipConnection, { nullable: true })
  members(
    @Root() o: Organization,
    @Ctx() ctx: RequestContext,
    @Arg('first', () => Int, { nullable: true, defaultValue: 20 }) first: number,
    @Arg('after', () => String, { nullable: true }) after?: string | null,
    @Arg('roleKey', () => String, { nullable: true }) roleKey?: string | null,
    @Arg('search', () => String, { nullable: true }) search?: string | null,
    @Info() info?: GraphQLResolveInfo,
  ): Promise<ConnectionShape<Membership>> {
    const lean = info !== undefined && USER_LIST_COLUMNS.serves(info, ['nodes', 'user'], ['edges', 'node', 'user']);
    const roles = info === undefined || !pageRoleKeysAlone(info);
    return new MembershipService(ctx).list(o.id, first, after, { roleKey, search, userColumns: lean ? 'lean' : 'full', roles });
  }
}
