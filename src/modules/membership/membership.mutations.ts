import { Arg, Ctx, ID, Mutation, Resolver } from 'type-graphql';
import type { RequestContext } from '../../context';
import { Organization } from '../organization/organization.entity';
import { Membership } from './membership.entity';
import { MemberService } from './member.service';
import { Role } from './role.entity';
import { CreateRoleInput, UpdateRoleInput } from './role.inputs';
import { RoleService } from './role.service';

/** Member, ownership and custom-role mutations: each reads its arguments and calls one service method. */
@Resolver(() => Membership)
export class MembershipMutationResolver {
  @Mutation(() => Membership)
  updateMemberRole(
    @Ctx() ctx: RequestContext,
    @Arg('organizationId', () => ID) organizationId: string,
    @Arg('userId', () => ID) userId: string,
    @Arg('roleKey', () => String) roleKey: string,
  ): Promise<Membership> {
    return new MemberService(ctx).updateRole(organizationId, userId, roleKey);
  }

  @Mutation(() => Boolean)
  removeMember(@Ctx() ctx: RequestContext, @Arg('organizationId', () => ID) organizationId: string, @Arg('userId', () => ID) userId: string): Promise<boolean> {
    return new MemberService(ctx).remove(organizationId, userId);
  }

  @Mutation(() => Boolean)
  leaveOrganization(@Ctx() ctx: RequestContext, @Arg('organizationId', () => ID) organizationId: string): Promise<boolean> {
    return new MemberService(ctx).leave(organizationId);
  }

  @Mutation(() => Organization)
  transferOwnership(
    @Ctx() ctx: RequestContext,
    @Arg('organizationId', () => ID) organizationId: string,
    @Arg('newOwnerId', () => ID) newOwnerId: string,
    @Arg('confirmation', () => String) confirmation: string,
  ): Promise<Organization> {
    return new MemberService(ctx).transferOwnership(organizationId, newOwnerId, confirmation);
  }

  @Mutation(() => Role)
  createRole(@Ctx() ctx: RequestContext, @Arg('organizationId', () => ID) organizationId: string, @Arg('input', () => CreateRoleInput) input: CreateRoleInput): Promise<Role> {
    return new RoleService(ctx).create(organizationId, input);
  }

  @Mutation(() => Role)
  updateRole(@Ctx() ctx: RequestContext, @Arg('id', () => ID) id: string, @Arg('input', () => UpdateRoleInput) input: UpdateRoleInput): Promise<Role> {
    return new RoleService(ctx).update(id, input);
  }

  @Mutation(() => Boolean)
  deleteRole(@Ctx() ctx: RequestContext, @Arg('id', () => ID) id: string): Promise<boolean> {
    return new RoleService(ctx).delete(id);
  }
}
