import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Ctx, FieldResolver, ID, Info, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { found, NotFoundError } from '../../common/errors';
import { andThen, loadNow } from '../../database/loader-helpers';
import { isUuid } from '../../common/validation';
import { perSelection, selectedFields } from '../../database/projection';
import { OrganizationConnection } from '../../common/connections';
import type { ConnectionShape } from '../../common/pagination';
import type { RequestContext } from '../../context';
import { Role } from '../membership/role.entity';
import { User } from '../user/user.entity';
import { Organization } from './organization.entity';
import { ORGANIZATION_LIST_COLUMNS } from './organization.loaders';
import { CreateOrganizationInput, UpdateOrganizationInput } from './organization.inputs';
import { OrganizationService } from './organization.service';
import { OrganizationDeletionService } from './organization-deletion.service';
import { DeletionImpact } from './organization-deletion.impact';
import { organizationStatus } from '../billing/subscription.resolver';
import { Banner, Branding, OrganizationSettings, OrganizationStatus, SecuritySettings } from './organization.types';

/**
 * Whether an organization's selection asks for its owner: it is then read along with the
 * organization (organizationWithOwnerBySlug/ById).
 */
const ownerAsked = perSelection((info) => selectedFields(info).has('owner'));

@Resolver(() => Organization)
export class OrganizationResolver {
  @Query(() => Organization, { nullable: true })
  async organization(
    @Ctx() ctx: RequestContext,
    @Arg('id', () => ID, { nullable: true }) id?: string | null,
    @Arg('slug', () => String, { nullable: true }) slug?: string | null,
    @Info() info?: GraphQLResolveInfo,
  ): Promise<Organization> {
    await ctx.access.requirePrincipal();
    const withOwner = info !== undefined && ownerAsked(info);
    let targetId: string | null | undefined = id;
    if (!targetId && slug) targetId = (await (withOwner ? ctx.loaders.organizationWithOwnerBySlug : ctx.loaders.organizationBySlug).load(slug))?.id;
    // By id, the organization and its owner are read together (primed) once the viewer is known to
    // belong to it; access.organization below decides as always, from the primed organization.
    else if (targetId && withOwner && isUuid(targetId) && (await ctx.access.roleIn(targetId))) await ctx.loaders.organizationWithOwnerById.load(targetId);
    if (!targetId) throw new NotFoundError('Organization');
    const organization = await ctx.access.organization(targetId);
    if (id && slug && organization.slug !== slug.toLowerCase()) throw new NotFoundError('Organization');
    return organization;
  }

  @Query(() => OrganizationConnection)
  organizations(
    @Ctx() ctx: RequestContext,
    @Arg('first', () => Int, { nullable: true, defaultValue: 20 }) first: number,
    @Arg('after', () => String, { nullable: true }) after?: string | null,
    @Info() info?: GraphQLResolveInfo,
  ): Promise<ConnectionShape<Organization>> {
    return new OrganizationService(ctx).listVisible(first, after, info !== undefined && ORGANIZATION_LIST_COLUMNS.serves(info, ['nodes'], ['edges', 'node']));
  }

  @Mutation(() => Organization)
  createOrganization(@Ctx() ctx: RequestContext, @Arg('input', () => CreateOrganizationInput) input: CreateOrganizationInput): Promise<Organization> {
    return new OrganizationService(ctx).create(input);
  }

  @Mutation(() => Organization)
  updateOrganization(
    @Ctx() ctx: RequestContext,
    @Arg('id', () => ID) id: string,
    @Arg('input', () => UpdateOrganizationInput) input: UpdateOrganizationInput,
  ): Promise<Organization> {
    return new OrganizationService(ctx).update(id, input);
  }

  @Mutation(() => Organization)
  changeOrganizationSlug(@Ctx() ctx: RequestContext, @Arg('id', () => ID) id: string, @Arg('slug', () => String) slug: string): Promise<Organization> {
    return new OrganizationService(ctx).changeSlug(id, slug);
  }

  @Mutation(() => Organization, { description: 'Soft delete (owner only): restorable until purgeAt, then purged for good.' })
  deleteOrganization(@Ctx() ctx: RequestContext, @Arg('id', () => ID) id: string, @Arg('confirmSlug', () => String) confirmSlug: string): Promise<Organization> {
    return new OrganizationDeletionService(ctx).delete(id, confirmSlug);
  }

  @Mutation(() => Organization, { description: 'Brings a soft-deleted organization back before its purgeAt (owner only).' })
  restoreOrganization(@Ctx() ctx: RequestContext, @Arg('id', () => ID) id: string): Promise<Organization> {
    return new OrganizationDeletionService(ctx).restore(id);
  }

  @FieldResolver(() => DeletionImpact, { nullable: true, description: 'What deleting this organization would remove, and what blocks it now (org.delete).' })
  async deletionImpact(@Root() o: Organization, @Ctx() ctx: RequestContext): Promise<DeletionImpact> {
    const impact = await ctx.loaders.deletionImpactByOrganization.load(o.id);
    if (!impact) throw new NotFoundError('Organization');
    return impact;
  }

  @FieldResolver(() => Boolean)
  async isActive(@Ctx() ctx: RequestContext, @Root() o: Organization): Promise<boolean> {
    return (await organizationStatus(ctx, o)) === OrganizationStatus.ACTIVE;
  }

  @FieldResolver(() => OrganizationSettings, { nullable: true, description: 'Null with FORBIDDEN without org.settings.view.' })
  settings(@Root() o: Organization): OrganizationSettings {
    return o.settings;
  }

  @FieldResolver(() => SecuritySettings, { nullable: true, description: 'Null with FORBIDDEN without org.settings.view.' })
  security(@Root() o: Organization): SecuritySettings {
    return o.security;
  }

  @FieldResolver(() => Branding)
  branding(@Root() o: Organization): Branding {
    return o.branding;
  }

  @FieldResolver(() => Banner, { nullable: true })
  banner(@Root() o: Organization): Banner | null {
    return o.banner;
  }

  /** Read along with the organization when asked (primed): answered at once then, not as a promise. */
  @FieldResolver(() => User)
  owner(@Root() o: Organization, @Ctx() ctx: RequestContext): User | Promise<User> {
    return andThen(loadNow(ctx.loaders.ownerIdByOrganization, o.id), (owner) =>
      andThen(owner ? loadNow(ctx.loaders.userById, owner.user_id) : null, (user) => found(user, 'User')),
    );
  }

  @FieldResolver(() => Int)
  memberCount(@Root() o: Organization, @Ctx() ctx: RequestContext): Promise<number> {
    return ctx.loaders.memberCount.load(o.id);
  }

  @FieldResolver(() => Int)
  workspaceCount(@Root() o: Organization, @Ctx() ctx: RequestContext): Promise<number> {
    return ctx.loaders.workspaceCount.load(o.id);
  }

  @FieldResolver(() => Int)
  environmentCount(@Root() o: Organization, @Ctx() ctx: RequestContext): Promise<number> {
    return ctx.loaders.environmentCount.load(o.id);
  }

  @FieldResolver(() => [Role], { nullable: true })
  roles(@Root() o: Organization, @Ctx() ctx: RequestContext): Promise<Role[]> {
    return ctx.loaders.rolesByOrganization.load(o.id);
  }

  @FieldResolver(() => Role, { nullable: true })
  async viewerRole(@Root() o: Organization, @Ctx() ctx: RequestContext): Promise<Role | null> {
    const key = await ctx.access.roleIn(o.id);
    return (await ctx.loaders.rolesByOrganization.load(o.id)).find((r) => r.key === key) ?? null;
  }

  @FieldResolver(() => [String])
  async viewerPermissions(@Root() o: Organization, @Ctx() ctx: RequestContext): Promise<string[]> {
    return [...(await ctx.access.orgPermissions(o.id))].sort();
  }
}
