import { type FragmentDefinitionNode, type OperationDefinitionNode, valueFromASTUntyped } from 'graphql';
import { OPERATION_GUARDS } from '../authz/operations';
import { isUuid } from '../common/validation';
import { forEachField } from '../graphql/selections';

/** What a root field can name, as the counter function (migration 1765600000000) matches it within the principal's own organizations. */
export type ScopeKind = 'organization' | 'organization_slug' | 'workspace' | 'environment' | 'role' | 'invitation' | 'api_key';

export interface NamedScope {
  kind: ScopeKind;
  id: string;
}

type ScopeArgs = ReadonlyArray<{ kind: ScopeKind; arg: string }>;

/**
 * Root fields guarded only by `authenticated` (their scope is checked by Access in the resolver)
 * that nevertheless act inside one organization: the argument that names it.
 */
const AUTHENTICATED_SCOPES: Record<'Query' | 'Mutation', Record<string, ScopeArgs>> = {
  Query: {
    organization: [
      { kind: 'organization', arg: 'id' },
      { kind: 'organization_slug', arg: 'slug' },
    ],
    workspace: [{ kind: 'workspace', arg: 'id' }],
    environment: [{ kind: 'environment', arg: 'id' }],
  },
  Mutation: {
    leaveOrganization: [{ kind: 'organization', arg: 'organizationId' }],
  },
};

/**
 * Which argument of each root field names its organization: the scope argument of its guard in
 * OPERATION_GUARDS (the one the shield rule resolves), else the table above. A field naming none
 * (`me`, `organizations`, `createOrganization`, `acceptInvitation`…) is outside any organization.
 */
function scopeArgs(type: 'Query' | 'Mutation', field: string): ScopeArgs {
  const guard = OPERATION_GUARDS[type][field];
  if (guard && guard.kind !== 'public' && guard.kind !== 'authenticated') return [{ kind: guard.kind === 'apiKey' ? 'api_key' : guard.kind, arg: guard.arg }];
  return AUTHENTICATED_SCOPES[type][field] ?? [];
}

/** At most this many scopes per request are sent (a document has at most 15 aliases anyway). */
const MAX_SCOPES = 32;

/**
 * The organizations, workspaces, environments… an operation's root fields name, from its literal
 * arguments or variables, before anything runs. Ids that are not UUIDs are left out (they can name
 * nothing); whether the principal belongs to what is named is decided by the database.
 */
export function namedScopes(operation: OperationDefinitionNode, fragments: Record<string, FragmentDefinitionNode>, variables: Record<string, unknown>): NamedScope[] {
  if (operation.operation === 'subscription') return [];
  const type = operation.operation === 'query' ? 'Query' : 'Mutation';
  const found = new Map<string, NamedScope>();
  forEachField(operation.selectionSet, fragments, (field) => {
    for (const { kind, arg } of scopeArgs(type, field.name.value)) {
      const node = field.arguments?.find((a) => a.name.value === arg);
      const value: unknown = node ? valueFromASTUntyped(node.value, variables) : undefined;
      if (typeof value !== 'string') continue;
      if (kind === 'organization_slug' ? value.length > 100 : !isUuid(value)) continue;
      if (found.size < MAX_SCOPES) found.set(`${kind}:${value}`, { kind, id: value });
    }
  });
  return [...found.values()];
}
