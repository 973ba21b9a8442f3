import type { GraphQLResolveInfo, GraphQLSchema } from 'graphql';
import type { IMiddlewareTypeMap } from 'graphql-middleware';
import { allow, deny, rule, shield } from 'graphql-shield';
import type { IRules } from 'graphql-shield';
import type { ShieldRule as IRule } from 'graphql-shield/typings/types';
import { ForbiddenError } from '../common/errors';
import type { RequestContext } from '../context';
import type { Environment } from '../modules/environment/environment.entity';
import type { Organization } from '../modules/organization/organization.entity';
import type { Workspace } from '../modules/workspace/workspace.entity';
import { FIELD_GUARDS, type Guard, OPEN_TYPES, OPERATION_GUARDS, USER_ONLY_OPERATIONS } from './operations';
import type { Permission } from './permissions';

type Args = Record<string, unknown>;

/** Shield wants one instance per rule name: rules are made once and reused for every field. */
const made = new Map<string, IRule>();
const once = (name: string, make: () => IRule): IRule => {
  let existing = made.get(name);
  if (!existing) made.set(name, (existing = make()));
  return existing;
};

/**
 * The rule's answer is the error itself: shield reports a returned error as is (typed errors pass,
 * anything else is masked by the formatter), whereas it would turn a thrown one into FORBIDDEN —
 * and a database outage must not look like a missing permission.
 */
const decide = async (check: () => Promise<unknown>): Promise<true | Error> => {
  try {
    await check();
    return true;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
};

// Results depend on the parent or arguments: never cached by shield (Access memoizes the expensive part).
const noCache = { cache: 'no_cache' as const };

/** A mutation's rule names the organization it writes to (null: none), for the read-only check of RequestContext.mutate. */
const scopeWrite = (ctx: RequestContext, info: GraphQLResolveInfo, organizationId: string | null): void => {
  if (info.parentType.name === 'Mutation') ctx.scopeWrite(info.fieldName, organizationId);
};

/**
 * A scoped operation's guard: the mutation is marked as running before its scope is looked up (so
 * Access leaves the organization's security settings to ctx.mutate, after the input checks, SPEC §6;
 * a query meets them in the lookup), then named with the organization it writes to.
 */
const scoped = async (ctx: RequestContext, info: GraphQLResolveInfo, lookup: () => Promise<string>): Promise<void> => {
  scopeWrite(ctx, info, null);
  scopeWrite(ctx, info, await lookup());
};

const authenticated = rule('isAuthenticated', noCache)((_p, _a, ctx: RequestContext, info: GraphQLResolveInfo) =>
  decide(async () => {
    scopeWrite(ctx, info, null);
    // A person's operations (me, createOrganization, invitations…) are FORBIDDEN to an API key.
    if (USER_ONLY_OPERATIONS.has(info.fieldName)) await ctx.access.requireViewer();
    else await ctx.access.requirePrincipal();
  }),
);

/** Rule for an operation: UNAUTHENTICATED → NOT_FOUND (scope not visible) → FORBIDDEN (SPEC §6 order). */
function operationRule(guard: Guard): IRule {
  switch (guard.kind) {
    case 'public':
      return allow;
    case 'authenticated':
      return authenticated;
    case 'organization':
      return once(`hasOrg:${guard.permission}:${guard.arg}`, () => rule(`hasOrg:${guard.permission}:${guard.arg}`, noCache)((_p, args: Args, ctx: RequestContext, info: GraphQLResolveInfo) =>
        decide(() => scoped(ctx, info, async () => (await ctx.access.organization(args[guard.arg], guard.permission)).id)),
      ));
    case 'workspace':
      return once(`hasWorkspace:${guard.permission}:${guard.arg}`, () => rule(`hasWorkspace:${guard.permission}:${guard.arg}`, noCache)((_p, args: Args, ctx: RequestContext, info: GraphQLResolveInfo) =>
        decide(() => scoped(ctx, info, async () => (await ctx.access.workspace(args[guard.arg], guard.permission)).organizationId)),
      ));
    case 'environment':
      return once(`hasEnvironment:${guard.permission}:${guard.arg}`, () => rule(`hasEnvironment:${guard.permission}:${guard.arg}`, noCache)((_p, args: Args, ctx: RequestContext, info: GraphQLResolveInfo) =>
        decide(() => scoped(ctx, info, async () => (await ctx.access.environment(args[guard.arg], guard.permission)).workspace.organizationId)),
      ));
    case 'role':
      return once(`hasRole:${guard.permission}:${guard.arg}`, () => rule(`hasRole:${guard.permission}:${guard.arg}`, noCache)((_p, args: Args, ctx: RequestContext, info: GraphQLResolveInfo) =>
        decide(() => scoped(ctx, info, async () => (await ctx.access.role(args[guard.arg], guard.permission)).organizationId)),
      ));
    case 'apiKey':
      return once(`hasApiKey:${guard.permission}:${guard.arg}`, () => rule(`hasApiKey:${guard.permission}:${guard.arg}`, noCache)((_p, args: Args, ctx: RequestContext, info: GraphQLResolveInfo) =>
        decide(() => scoped(ctx, info, async () => (await ctx.access.apiKeyById(args[guard.arg], guard.permission)).organizationId)),
      ));
    case 'invitation':
      return once(`hasInvitation:${guard.permission}:${guard.arg}`, () => rule(`hasInvitation:${guard.permission}:${guard.arg}`, noCache)((_p, args: Args, ctx: RequestContext, info: GraphQLResolveInfo) =>
        decide(() => scoped(ctx, info, async () => (await ctx.access.invitation(args[guard.arg], guard.permission)).organizationId)),
      ));
  }
}

/** FORBIDDEN unless the check grants it; a failing check (the database is gone) is its own error, never FORBIDDEN. */
const forbiddenUnless = (check: () => Promise<boolean>): Promise<true | Error> =>
  decide(async () => {
    if (!(await check())) throw new ForbiddenError();
  });

/** The permission is held (else false: FORBIDDEN), then the organization's security settings apply (SPEC §6 order). */
async function permittedInside(ctx: RequestContext, organizationId: string, granted: ReadonlySet<Permission>, permission: Permission): Promise<boolean> {
  if (!granted.has(permission)) return false;
  await ctx.access.inside(organizationId);
  return true;
}

const fieldRules: Record<keyof typeof FIELD_GUARDS, (permission: Permission) => IRule> = {
  Organization: (permission) =>
    once(`orgField:${permission}`, () => rule(`orgField:${permission}`, noCache)((parent: Organization, _a, ctx: RequestContext) =>
      forbiddenUnless(async () => permittedInside(ctx, parent.id, await ctx.access.orgPermissions(parent.id), permission)),
    )),
  Workspace: (permission) =>
    once(`workspaceField:${permission}`, () => rule(`workspaceField:${permission}`, noCache)((parent: Workspace, _a, ctx: RequestContext) =>
      forbiddenUnless(async () => permittedInside(ctx, parent.organizationId, await ctx.access.workspacePermissions(parent), permission)),
    )),
  Environment: (permission) =>
    once(`environmentField:${permission}`, () => rule(`environmentField:${permission}`, noCache)((parent: Environment, _a, ctx: RequestContext) =>
      forbiddenUnless(async () => {
        const workspace = await ctx.loaders.workspaceById.load(parent.workspaceId);
        return workspace !== null && (await permittedInside(ctx, workspace.organizationId, await ctx.access.workspacePermissions(workspace), permission));
      }),
    )),
};

/**
 * The rule tree generated from the matrix data; anything not listed falls to `deny`.
 *
 * A tenant type's `*` permission (what seeing the object at all needs) is checked once per
 * object, where the object is reached — every path goes through Access (`organization`,
 * `viewableOrganizations`, `visibleWorkspace`, `visibleEnvironment`), which requires it — so
 * its plain fields get `allow`.
 * Fields with a permission of their own (settings, members, audit…) keep a rule of their own.
 */
export function ruleTree(schema: GraphQLSchema): IRules {
  const tree: Record<string, Record<string, IRule>> = {};
  for (const [typeName, guards] of Object.entries(OPERATION_GUARDS)) {
    const fields = (typeName === 'Query' ? schema.getQueryType() : schema.getMutationType())?.getFields() ?? {};
    tree[typeName] = Object.fromEntries(Object.entries(guards).filter(([field]) => field in fields).map(([field, guard]) => [field, operationRule(guard)]));
  }
  for (const [typeName, guards] of Object.entries(FIELD_GUARDS) as Array<[keyof typeof FIELD_GUARDS, Record<string, Permission>]>) {
    const type = schema.getType(typeName);
    if (!type || !('getFields' in type)) continue;
    const byField: Record<string, IRule> = {};
    for (const field of Object.keys(type.getFields())) byField[field] = guards[field] ? fieldRules[typeName](guards[field]) : allow;
    tree[typeName] = byField;
  }
  for (const typeName of OPEN_TYPES) if (schema.getType(typeName)) tree[typeName] = { '*': allow };
  return tree as IRules;
}

/**
 * The shield middleware, without the fields whose rule is `allow`: graphql-shield would wrap
 * every field of the schema in an asynchronous rule check, and a list of a thousand objects would
 * pay for it on every scalar. A field with no rule at all still falls to `deny`.
 */
export function permissions(schema: GraphQLSchema): IMiddlewareTypeMap {
  const tree = ruleTree(schema) as Record<string, Record<string, IRule>>;
  const generated = shield(tree, {
    fallbackRule: deny,
    fallbackError: () => new ForbiddenError(),
    allowExternalErrors: true,
    debug: false,
  }).generate(schema) as IMiddlewareTypeMap;
  for (const [typeName, fields] of Object.entries(generated)) {
    if (typeof fields !== 'object') continue;
    for (const field of Object.keys(fields)) {
      if ((tree[typeName]?.[field] ?? tree[typeName]?.['*']) === allow) delete (fields as Record<string, unknown>)[field];
    }
  }
  return generated;
}
