import { Arg, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { RequestContext } from '../../context';
import { Organization } from '../organization/organization.entity';
import { User } from '../user/user.entity';
import { Workspace } from '../workspace/workspace.entity';
import { SecretService } from './secret.service';
import { ResolvedSecret, SecretMetadata, toMetadata } from './secret.types';

/** `setSecret`, `deleteSecret` and `SecretMetadata.updatedBy`: values go in, never out. */
@Resolver(() => SecretMetadata)
export class SecretResolver {
  @FieldResolver(() => User, { nullable: true })
  async updatedBy(@Root() s: SecretMetadata, @Ctx() ctx: RequestContext): Promise<User | null> {
    return s.updatedById ? ((await ctx.loaders.userById.load(s.updatedById)) ?? null) : null;
  }

  @Mutation(() => SecretMetadata)
  setSecret(
    @Ctx() ctx: RequestContext,
    @Arg('organizationId', () => ID) organizationId: string,
    @Arg('key', () => String) key: string,
    @Arg('value', () => String) value: string,
    @Arg('workspaceId', () => ID, { nullable: true }) workspaceId?: string | null,
  ): Promise<SecretMetadata> {
    return new SecretService(ctx).set(organizationId, workspaceId, key, value);
  }

  @Query(() => [ResolvedSecret], { description: "For API-key principals with the secrets.read scope: organization secrets overlaid by the workspace's own." })
  resolveSecrets(@Ctx() ctx: RequestContext, @Arg('workspaceId', () => ID) workspaceId: string): Promise<ResolvedSecret[]> {
    return new SecretService(ctx).resolve(workspaceId);
  }

  @Mutation(() => Boolean)
  deleteSecret(
    @Ctx() ctx: RequestContext,
    @Arg('organizationId', () => ID) organizationId: string,
    @Arg('key', () => String) key: string,
    @Arg('workspaceId', () => ID, { nullable: true }) workspaceId?: string | null,
  ): Promise<boolean> {
    return new SecretService(ctx).delete(organizationId, workspaceId, key);
  }
}

@Resolver(() => Organization)
export class OrganizationSecretsResolver {
  @FieldResolver(() => [SecretMetadata], { nullable: true, description: 'Organization-level secrets: metadata only, never values.' })
  async secrets(@Root() o: Organization, @Ctx() ctx: RequestContext): Promise<SecretMetadata[]> {
    return (await ctx.loaders.organizationSecrets.load(o.id)).map(toMetadata);
  }
}

@Resolver(() => Workspace)
export class WorkspaceSecretsResolver {
  @FieldResolver(() => [SecretMetadata], { nullable: true, description: "The workspace's own secrets (overlaying the organization's): metadata only." })
  async secrets(@Root() w: Workspace, @Ctx() ctx: RequestContext): Promise<SecretMetadata[]> {
    return (await ctx.loaders.workspaceSecrets.load(w.id)).map(toMetadata);
  }
}
