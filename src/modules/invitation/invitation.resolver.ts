import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { InvitationConnection } from '../../common/connections';
import { ForbiddenError, found } from '../../common/errors';
import type { ConnectionShape } from '../../common/pagination';
import { VIEW_PERMISSION } from '../../authz/operations';
import type { RequestContext } from '../../context';
import { Membership } from '../membership/membership.entity';
import { Role } from '../membership/role.entity';
import { Organization } from '../organization/organization.entity';
import { User } from '../user/user.entity';
import { visibleUser } from '../user/user.resolver';
import { Viewer } from '../viewer/viewer.resolver';
import { effectiveStatus, Invitation, InvitationStatus, InvitationTicket, InviteMemberInput } from './invitation.entity';
import { InvitationService } from './invitation.service';
import { InviteeService } from './invitee.service';

/**
 * The organization of an invitation seen by someone who is not (yet) allowed to see it: its name
 * and nothing else (SPEC §5). Every other stored field, its id included, answers FORBIDDEN at its
 * path — and so does every field resolver and rule that needs the id (counts, owner, members…).
 */
function organizationPreview(ctx: RequestContext, name: string): Organization {
  const preview = Object.create(Organization.prototype) as Organization;
  Object.defineProperty(preview, 'name', { value: name, enumerable: true });
  for (const column of ctx.app.db.dataSource.getMetadata(Organization).columns) {
    if (column.propertyName === 'name') continue;
    Object.defineProperty(preview, column.propertyName, {
      get: () => {
        throw new ForbiddenError('An invitation shows only the name of its organization');
      },
    });
  }
  return preview;
}

@Resolver(() => Invitation)
export class InvitationResolver {
  @Query(() => Invitation, { nullable: true, description: 'Preview of an invitation by its token: organization name, role, status.' })
  invitation(@Ctx() ctx: RequestContext, @Arg('token', () => String) token: string): Promise<Invitation> {
    return new InviteeService(ctx).byToken(token);
  }

  @Mutation(() => InvitationTicket)
  inviteMember(@Ctx() ctx: RequestContext, @Arg('organizationId', () => ID) organizationId: string, @Arg('input', () => InviteMemberInput) input: InviteMemberInput): Promise<InvitationTicket> {
    return new InvitationService(ctx).invite(organizationId, input);
  }

  @Mutation(() => InvitationTicket)
  resendInvitation(@Ctx() ctx: RequestContext, @Arg('id', () => ID) id: string): Promise<InvitationTicket> {
    return new InvitationService(ctx).resend(id);
  }

  @Mutation(() => Invitation)
  revokeInvitation(@Ctx() ctx: RequestContext, @Arg('id', () => ID) id: string): Promise<Invitation> {
    return new InvitationService(ctx).revoke(id);
  }

  @Mutation(() => Membership)
  acceptInvitation(@Ctx() ctx: RequestContext, @Arg('token', () => String) token: string): Promise<Membership> {
    return new InviteeService(ctx).accept(token);
  }

  @Mutation(() => Invitation)
  declineInvitation(@Ctx() ctx: RequestContext, @Arg('token', () => String) token: string): Promise<Invitation> {
    return new InviteeService(ctx).decline(token);
  }

  @FieldResolver(() => InvitationStatus)
  status(@Root() invitation: Invitation): InvitationStatus {
    return effectiveStatus(invitation);
  }

  /** The whole organization for those who may see it; otherwise (the invitee, anyone holding the token) its name only. */
  @FieldResolver(() => Organization)
  async organization(@Root() invitation: Invitation, @Ctx() ctx: RequestContext): Promise<Organization> {
    if (!invitation.preview) return ctx.access.organization(invitation.organizationId);
    if (await ctx.viewer()) {
      const visible = await ctx.access.visibleOrganization(invitation.organizationId);
      if (visible && (await ctx.access.orgPermissions(visible.id)).has(VIEW_PERMISSION.Organization)) return visible;
    }
    return organizationPreview(ctx, invitation.preview.organizationName);
  }

  @FieldResolver(() => Role)
  async role(@Root() invitation: Invitation, @Ctx() ctx: RequestContext): Promise<Role> {
    if (invitation.preview) return invitation.preview.role;
    return found(await ctx.loaders.roleByKey.load({ organizationId: invitation.organizationId, key: invitation.roleKey }), 'Role');
  }

  /** Only for those who see the invitation through its organization (a preview shows no one). */
  @FieldResolver(() => User, { nullable: true })
  async invitedBy(@Root() invitation: Invitation, @Ctx() ctx: RequestContext): Promise<User | null> {
    return !invitation.preview && invitation.invitedBy ? visibleUser(ctx, invitation.invitedBy) : null;
  }
}

@Resolver(() => Organization)
export class OrganizationInvitationsResolver {
  /** Newest first; `status` filters (a PENDING invitation past its expiry counts as EXPIRED). */
  @FieldResolver(() => InvitationConnection, { nullable: true })
  invitations(
    @Root() o: Organization,
    @Ctx() ctx: RequestContext,
    @Arg('status', () => InvitationStatus, { nullable: true }) status?: InvitationStatus | null,
    @Arg('first', () => Int, { nullable: true, defaultValue: 20 }) first?: number,
    @Arg('after', () => String, { nullable: true }) after?: string | null,
  ): Promise<ConnectionShape<Invitation>> {
    return new InvitationService(ctx).list(o.id, status, first, after);
  }
}

@Resolver(() => Viewer)
export class ViewerInvitationsResolver {
  @FieldResolver(() => [Invitation])
  pendingInvitations(@Ctx() ctx: RequestContext): Promise<Invitation[]> {
    return new InviteeService(ctx).pendingForViewer();
  }
}
