import { buildSubgraphSchema } from '@apollo/subgraph';
import { printSchemaWithDirectives } from '@graphql-tools/utils';
import type { GraphQLSchema } from 'graphql';
import { applyMiddleware } from 'graphql-middleware';
import { gql } from 'graphql-tag';
import { buildSchema, type BuildSchemaOptions, createResolversMap, getMetadataStorage } from 'type-graphql';
import { permissions } from './authz/rules';
import { DateTimeScalar } from './common/scalars';
import { NotFoundError } from './common/errors';
import type { RequestContext } from './context';
import { EnvironmentResolver, WorkspaceEnvironmentsResolver } from './modules/environment/environment.resolver';
import { EnvironmentMutationResolver } from './modules/environment/environment.mutations';
import { WorkspaceMutationResolver } from './modules/workspace/workspace.mutations';
import { MembershipMutationResolver } from './modules/membership/membership.mutations';
import { MembershipResolver, OrganizationMembersResolver, RoleResolver } from './modules/membership/membership.resolver';
import { OrganizationResolver } from './modules/organization/organization.resolver';
import { AuditQueryResolver, AuditResolver, OrganizationAuditResolver } from './modules/audit/audit.resolver';
import { PlanResolver } from './modules/billing/plan.resolver';
import { OrganizationSubscriptionResolver, subscriptionReference, SubscriptionResolver } from './modules/billing/subscription.resolver';
import { FeatureFlagResolver } from './modules/feature-flag/feature-flag.resolver';
import { OrganizationSecretsResolver, SecretResolver, WorkspaceSecretsResolver } from './modules/secret/secret.resolver';
import { ApiKeyResolver, OrganizationApiKeysResolver } from './modules/api-key/api-key.resolver';
import { OrganizationQuotaResolver } from './modules/quota/quota.resolver';
import { InvitationResolver, OrganizationInvitationsResolver, ViewerInvitationsResolver } from './modules/invitation/invitation.resolver';
import { UserResolver, visibleUser } from './modules/user/user.resolver';
import { ViewerResolver } from './modules/viewer/viewer.resolver';
import { NotificationMutationResolver, OrganizationNotificationsResolver, ViewerNotificationsResolver } from './modules/notification/notification.resolver';
import { OrganizationWorkspacesResolver, WorkspaceResolver } from './modules/workspace/workspace.resolver';

const RESOLVERS: BuildSchemaOptions['resolvers'] = [
  ViewerResolver,
  UserResolver,
  OrganizationResolver,
  OrganizationMembersResolver,
  MembershipResolver,
  MembershipMutationResolver,
  RoleResolver,
  WorkspaceResolver,
  OrganizationWorkspacesResolver,
  WorkspaceMutationResolver,
  EnvironmentResolver,
  EnvironmentMutationResolver,
  WorkspaceEnvironmentsResolver,
  AuditResolver,
  AuditQueryResolver,
  OrganizationAuditResolver,
  PlanResolver,
  SubscriptionResolver,
  OrganizationSubscriptionResolver,
  FeatureFlagResolver,
  SecretResolver,
  ApiKeyResolver,
  OrganizationApiKeysResolver,
  OrganizationSecretsResolver,
  WorkspaceSecretsResolver,
  OrganizationQuotaResolver,
  InvitationResolver,
  OrganizationInvitationsResolver,
  ViewerInvitationsResolver,
  ViewerNotificationsResolver,
  OrganizationNotificationsResolver,
  NotificationMutationResolver,
];

type Ref = { id: unknown };

/**
 * Federation entity references resolve through the same visibility checks as the direct
 * queries (and the same per-request loaders, so a list of references is batched): a reference
 * to something the principal may not see is null with NOT_FOUND, never data.
 */
const referenceResolvers = {
  Organization: {
    __resolveReference: (ref: Ref, ctx: RequestContext) => ctx.access.organization(ref.id),
  },
  Workspace: {
    __resolveReference: (ref: Ref, ctx: RequestContext) => ctx.access.workspace(ref.id),
  },
  Environment: {
    __resolveReference: async (ref: Ref, ctx: RequestContext) => (await ctx.access.environment(ref.id)).environment,
  },
  Subscription: {
    __resolveReference: (ref: Ref, ctx: RequestContext) => subscriptionReference(ctx, ref.id),
  },
  User: {
    __resolveReference: async (ref: Ref, ctx: RequestContext) =>
      (typeof ref.id === 'string' && (await visibleUser(ctx, ref.id))) || Promise.reject(new NotFoundError('User')),
  },
};

/**
 * A plain `@Field` (a column, no field resolver) is read by type-graphql through its middleware
 * chain: per field and object, the chain's arguments and a closure, to run no middleware at all
 * (this service declares none: no global middlewares, no `@UseMiddleware`, no `@Authorized`;
 * permissions are the shield's). The same read, `root[property]`, without them. A field with a
 * middleware or a role, or with a field resolver of any kind, keeps type-graphql's resolver.
 */
function plainFieldReads(resolvers: Record<string, Record<string, unknown>>): void {
  const storage = getMetadataStorage();
  for (const objectType of storage.objectTypes) {
    const typeResolvers = resolvers[objectType.name];
    if (!typeResolvers) continue;
    for (const field of objectType.fields ?? []) {
      if (field.middlewares?.length || field.roles !== undefined) continue;
      if (storage.fieldResolvers.some((r) => r.methodName === field.name && r.getObjectType?.() === field.target)) continue;
      if (typeof typeResolvers[field.schemaName] !== 'function') continue;
      const property = field.name;
      typeResolvers[field.schemaName] = (root: Record<string, unknown>) => root[property];
    }
  }
}

/** The schema type-graphql builds from the resolvers, as an Apollo Federation 2 subgraph (no permissions). */
export async function buildSubgraph(): Promise<GraphQLSchema> {
  const schema = await buildSchema({
    resolvers: RESOLVERS,
    scalarsMap: [{ type: Date, scalar: DateTimeScalar }],
    skipCheck: true,
    validate: false,
  });
  const typeDefs = gql`
    extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
    ${printSchemaWithDirectives(schema)}
  `;
  const resolvers = createResolversMap(schema) as Record<string, Record<string, unknown>>;
  plainFieldReads(resolvers);
  for (const [type, extra] of Object.entries(referenceResolvers)) resolvers[type] = { ...resolvers[type], ...extra };
  return buildSubgraphSchema({ typeDefs, resolvers: resolvers as never });
}

/** The served schema: the subgraph with the shield rules generated from the permission matrix. */
export async function buildAppSchema(): Promise<GraphQLSchema> {
  const subgraph = await buildSubgraph();
  return applyMiddleware(subgraph, permissions(subgraph));
}
