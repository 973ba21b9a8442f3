import { Arg, Ctx, FieldResolver, ID, Mutation, Resolver, Root } from 'type-graphql';
import type { RequestContext } from '../../context';
import { Organization } from '../organization/organization.entity';
import { User } from '../user/user.entity';
import { ApiKeyService } from './api-key.service';
import { AccessToken, ApiKey, CreateApiKeyInput, CreatedApiKey } from './api-key.types';

/** `createApiKey`, `revokeApiKey`, `exchangeApiKey` and `ApiKey.createdBy`: the secret goes out once, never in again except as a credential. */
@Resolver(() => ApiKey)
export class ApiKeyResolver {
  @FieldResolver(() => User, { nullable: true })
  async createdBy(@Root() k: ApiKey, @Ctx() ctx: RequestContext): Promise<User | null> {
    return k.createdById ? ((await ctx.loaders.userById.load(k.createdById)) ?? null) : null;
  }

  @Mutation(() => CreatedApiKey)
  createApiKey(@Ctx() ctx: RequestContext, @Arg('organizationId', () => ID) organizationId: string, @Arg('input', () => CreateApiKeyInput) input: CreateApiKeyInput): Promise<CreatedApiKey> {
    return new ApiKeyService(ctx).create(organizationId, input);
  }

  @Mutation(() => ApiKey)
  revokeApiKey(@Ctx() ctx: RequestContext, @Arg('id', () => ID) id: string): Promise<ApiKey> {
    return new ApiKeyService(ctx).revoke(id);
  }

  @Mutation(() => AccessToken)
  exchangeApiKey(@Ctx() ctx: RequestContext, @Arg('apiKey', () => String) apiKey: string): Promise<AccessToken> {
    return new ApiKeyService(ctx).exchange(apiKey);
  }
}

@Resolver(() => Organization)
export class OrganizationApiKeysResolver {
  @FieldResolver(() => [ApiKey], { nullable: true, description: "The organization's API keys (never their secrets)." })
  async apiKeys(
    @Root() o: Organization,
    @Ctx() ctx: RequestContext,
    @Arg('includeRevoked', () => Boolean, { nullable: true, defaultValue: false }) includeRevoked: boolean,
  ): Promise<ApiKey[]> {
    const keys = await ctx.loaders.apiKeysByOrganization.load(o.id);
    return includeRevoked ? keys : keys.filter((k) => k.revokedAt === null);
  }
}
