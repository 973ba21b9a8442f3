import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { NotFoundError } from '../../common/errors';
import { OrganizationConnection } from '../../common/connections';
import { decodeCursor, encodeCursor, pageSize, toConnection, toPage, type ConnectionShape } from '../../common/pagination';
import { hydrator } from '../../database/hydrate';
import type { RequestContext } from '../../context';
import { Role } from '../membership/role.entity';
import { User } from '../user/user.entity';
import { Organization } from './organization.entity';
import { CreateOrganizationInput, UpdateOrganizationInput } from './organization.inputs';
import { OrganizationService } from './organization.service';
import { Banner, Branding, OrganizationSettings, OrganizationStatus, SecuritySettings } from './organization.types';

/** The organizations the viewer may see, oldest first, keyset-paginated on (created_at, id). */
export async function listVisibleOrganizations(ctx: RequestContext, first: number | null | undefined, after: string | null | undefined): Promise<ConnectionShape<Organization>> {
  const limit = pageSize(first);
  const cursor = decodeCursor(after, ['timestamp', 'uuid']);
  const viewer = await ctx.access.requireViewer();
  const ids = [...viewer.roles.keys()];
  const owned = ids.filter((id) => viewer.roles.get(id) === 'owner');
  const visible = `id = ANY($1::uuid[]) AND (status <> 'DELETED' OR id = ANY($2::uuid[]))`;
  const rows = await ctx.tx.query(
    `SELECT * FROM organizations WHERE ${visible}
       AND ($3::timestamptz IS NULL OR (created_at, id) > ($3::timestamptz, $4::uuid))
     ORDER BY created_at, id LIMIT $5`,
    [ids, owned, cursor?.[0] ?? null, cursor?.[1] ?? null, limit + 1],
  );
  const toOrganization = hydrator(ctx.app.db.dataSource, Organization);
  const organizations = rows.map(toOrganization);
  for (const o of organizations) ctx.loaders.organizationById.prime(o.id, o);
  return toConnection(
    toPage(organizations, limit, cursor !== null, (o) => encodeCursor([o.createdAt.toISOString(), o.id]), async () => {
      const [count] = await ctx.tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM organizations WHERE ${visible}`, [ids, owned]);
      return count!.n;
    }),
  );
}

@Resolver(() => Organization)
export class OrganizationResolver {
  @Query(() => Organization, { nullable: true })
  async organization(
    @Ctx() ctx: RequestContext,
    @Arg('id', () => ID, { nullable: true }) id?: string | null,
    @Arg('slug', () => String, { nullable: true }) slug?: string | null,
  ): Promise<Organization> {
    await ctx.access.requireViewer();
    let targetId: string | null | undefined = id;
    if (!targetId && slug) targetId = (await ctx.loaders.organizationBySlug.load(slug))?.id;
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
  ): Promise<ConnectionShape<Organization>> {
    return listVisibleOrganizations(ctx, first, after);
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

  @FieldResolver(() => Boolean)
  isActive(@Root() o: Organization): boolean {
    return o.status === OrganizationStatus.ACTIVE;
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

  @FieldResolver(() => User)
  async owner(@Root() o: Organization, @Ctx() ctx: RequestContext): Promise<User> {
    const owner = await ctx.loaders.ownerIdByOrganization.load(o.id);
    const user = owner ? await ctx.loaders.userById.load(owner.user_id) : null;
    if (!user) throw new NotFoundError('User');
    return user;
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
