import { buildSubgraphSchema } from '@apollo/subgraph';
import { printSchemaWithDirectives } from '@graphql-tools/utils';
import { getNamedType, isLeafType, type GraphQLObjectType, type GraphQLResolveInfo, type GraphQLSchema } from 'graphql';
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

type Resolve = (root: unknown, args: Record<string, unknown>, context: unknown, info: GraphQLResolveInfo) => unknown;

/**
 * A `@FieldResolver` of a resolver class is called by type-graphql through its handler: for every
 * object, the method's parameters sorted again, every argument through an asynchronous
 * validation (which this schema turns off, `validate: false`) gathered by `Promise.all`, and the
 * middleware chain — a thousand objects' worth of arrays, promises and microtasks for the nested
 * lists of one request. The same call, direct, where it is exactly type-graphql's: no middleware
 * or role on the method, arguments of scalar or enum types (which type-graphql hands over as they
 * are; an input object is converted to its class and keeps type-graphql's call), no per-argument
 * validation, and the root, the context (whole) and the info. A root that is not an instance of
 * its declared class (type-graphql would copy it into one) takes type-graphql's own call. The
 * method runs on one instance of its resolver class, as type-graphql's default container keeps.
 */
function directFieldResolvers(built: GraphQLSchema, resolvers: Record<string, Record<string, unknown>>): void {
  const storage = getMetadataStorage();
  const instances = new Map<unknown, Record<string, (...params: unknown[]) => unknown>>();
  // As type-graphql picks them: the resolver classes given to buildSchema, none derived from
  // another (type-graphql copies inherited field resolvers into its own build), one per field.
  const classes = new Set<unknown>(RESOLVERS as readonly unknown[]);
  const definitions = storage.fieldResolvers.flatMap((definition) =>
    definition.kind === 'external' &&
    classes.has(definition.target) &&
    Object.getPrototypeOf(definition.target) === Function.prototype &&
    definition.resolverClassMetadata?.getObjectType &&
    definition.getObjectType
      ? [{ definition, objectClass: definition.getObjectType() }]
      : [],
  );
  const declarations = (objectClass: unknown, schemaName: string) =>
    definitions.filter((d) => d.objectClass === objectClass && d.definition.schemaName === schemaName).length;
  for (const { definition, objectClass } of definitions) {
    if (definition.middlewares?.length || definition.roles !== undefined || declarations(objectClass, definition.schemaName) !== 1) continue;
    for (const objectType of storage.objectTypes.filter((o) => o.target === objectClass)) {
      const typeResolvers = resolvers[objectType.name];
      const original = typeResolvers?.[definition.schemaName];
      const field = (built.getType(objectType.name) as GraphQLObjectType | undefined)?.getFields()[definition.schemaName];
      if (!typeResolvers || typeof original !== 'function' || !field) continue;
      const readers: Array<(root: unknown, args: Record<string, unknown>, context: unknown, info: GraphQLResolveInfo) => unknown> = [];
      let rootClass: (abstract new (...args: never[]) => unknown) | undefined;
      const direct = [...(definition.params ?? [])]
        .sort((a, b) => a.index - b.index)
        .every((param, position) => {
          if (param.index !== position) return false;
          if (param.kind === 'root' && param.propertyName === undefined) {
            const declared = param.getType?.();
            if (typeof declared === 'function') rootClass = declared as abstract new (...args: never[]) => unknown;
            readers.push((root) => root);
          } else if (param.kind === 'context' && param.propertyName === undefined) readers.push((_root, _args, context) => context);
          else if (param.kind === 'info') readers.push((_root, _args, _context, info) => info);
          else if (param.kind === 'arg' && !param.validateFn && !param.validateSettings) {
            const arg = field.args.find((a) => a.name === param.name);
            if (!arg || !isLeafType(getNamedType(arg.type))) return false;
            const name = param.name;
            readers.push((_root, args) => args[name]);
          } else return false;
          return true;
        });
      if (!direct) continue;
      let instance = instances.get(definition.target);
      if (!instance) instances.set(definition.target, (instance = new (definition.target as new () => Record<string, (...params: unknown[]) => unknown>)()));
      const resolver = instance;
      const method = definition.methodName;
      const fallback = original as Resolve;
      const declaredRoot = rootClass;
      typeResolvers[definition.schemaName] = ((root, args, context, info) => {
        if (declaredRoot && root !== null && typeof root === 'object' && !(root instanceof declaredRoot)) return fallback(root, args, context, info);
        const params = new Array<unknown>(readers.length);
        for (let i = 0; i < readers.length; i += 1) params[i] = readers[i]!(root, args, context, info);
        try {
          return resolver[method]!(...params);
        } catch (error) {
          // As type-graphql's handler answers a method that threw: a rejection.
          return Promise.reject(error);
        }
      }) satisfies Resolve;
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
  directFieldResolvers(schema, resolvers);
  for (const [type, extra] of Object.entries(referenceResolvers)) resolvers[type] = { ...resolvers[type], ...extra };
  return buildSubgraphSchema({ typeDefs, resolvers: resolvers as never });
}

/** The served schema: the subgraph with the shield rules generated from the permission matrix. */
export async function buildAppSchema(): Promise<GraphQLSchema> {
  const subgraph = await buildSubgraph();
  return applyMiddleware(subgraph, permissions(subgraph));
}
