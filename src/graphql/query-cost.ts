import type { ApolloServerPlugin } from '@apollo/server';
import {
  type ASTNode,
  type DocumentNode,
  type GraphQLField,
  getNamedType,
  getNullableType,
  type GraphQLSchema,
  isLeafType,
  isListType,
  isObjectType,
  visit,
} from 'graphql';
import { type ComplexityEstimator, getComplexity } from 'graphql-query-complexity';
import { setBounded } from '../common/bounded-map';
import { QueryTooComplexError } from '../common/errors';
import { MAX_PAGE_SIZE } from '../common/pagination';
import { requestInputError } from './input-guard';

/** What an unpaginated list of objects (`Workspace.environments`, `Organization.roles`, …) is assumed to hold. */
export const UNPAGINATED_LIST_CAP = 100;

/** Connection types: the return types of fields that take a `first` argument. Their lists are the page. */
const connectionTypesOf = new WeakMap<GraphQLSchema, Set<string>>();
function connectionTypes(schema: GraphQLSchema): Set<string> {
  let names = connectionTypesOf.get(schema);
  if (!names) {
    names = new Set();
    for (const type of Object.values(schema.getTypeMap())) {
      if (!isObjectType(type)) continue;
      for (const field of Object.values(type.getFields())) {
        if (field.args.some((a) => a.name === 'first')) names.add(getNamedType(field.type).name);
      }
    }
    connectionTypesOf.set(schema, names);
  }
  return names;
}

/** The page size a connection asks for: its `first` (literal, variable or default), clamped to 0–100. */
function pageSizeOf(field: GraphQLField<unknown, unknown>, args: Record<string, unknown>, outOfRange: { seen: boolean }): number {
  const given = args.first;
  const fallback = field.args.find((a) => a.name === 'first')?.defaultValue;
  const first = typeof given === 'number' ? given : typeof fallback === 'number' ? fallback : MAX_PAGE_SIZE;
  if (!Number.isInteger(first) || first < 0 || first > MAX_PAGE_SIZE) outOfRange.seen = true;
  return Math.min(Math.max(first, 0), MAX_PAGE_SIZE);
}

/**
 * Counts the objects a query may return, the way GitHub's API counts nodes (SPEC §8), from the
 * schema alone so that no new field can be forgotten:
 * - every object counts 1, scalars and enums 0, introspection 0;
 * - a connection (a field with a `first` argument) counts 1 plus `first` × its selection;
 * - the lists inside a connection (`nodes`, `edges`) are that page and count per item;
 * - `_entities` counts its selection once per representation;
 * - any other list of objects counts UNPAGINATED_LIST_CAP × its selection.
 */
function estimator(schema: GraphQLSchema, outOfRange: { seen: boolean }): ComplexityEstimator {
  const connections = connectionTypes(schema);
  return ({ type, field, args, childComplexity }) => {
    if (type.name.startsWith('__') || field.name.startsWith('__')) return 0;
    if (isLeafType(getNamedType(field.type))) return 0;
    if (field.args.some((a) => a.name === 'first')) return 1 + pageSizeOf(field, args, outOfRange) * childComplexity;
    const item = 1 + childComplexity;
    if (!isListType(getNullableType(field.type))) return item;
    if (connections.has(type.name)) return item;
    if (field.name === '_entities' && Array.isArray(args.representations)) return args.representations.length * item;
    return UNPAGINATED_LIST_CAP * item;
  };
}

/** Fields graphql-query-complexity visits at most (fragments expanded) before it gives up. */
const MAX_QUERY_NODES = 10_000;

export type CostResult = { cost: number; firstOutOfRange: boolean } | { tooLarge: true } | null;

/**
 * The cost of one operation with the request's variables; `tooLarge` when fragments expand
 * past MAX_QUERY_NODES fields; null when the variables do not coerce (the input guard reports that).
 */
export function queryCost(schema: GraphQLSchema, document: DocumentNode, operationName: string | null | undefined, variables: Record<string, unknown>): CostResult {
  const outOfRange = { seen: false };
  try {
    const cost = getComplexity({ schema, query: document, operationName: operationName ?? undefined, variables, maxQueryNodes: MAX_QUERY_NODES, estimators: [estimator(schema, outOfRange)] });
    return { cost, firstOutOfRange: outOfRange.seen };
  } catch (error) {
    if (error instanceof Error && /maximum allowed number of nodes/.test(error.message)) return { tooLarge: true };
    return null;
  }
}

/** The arguments the estimator reads (`first`, and `representations` for `_entities`); directives (`@skip`/`@include`) are the other input besides the document. */
const COST_ARGUMENTS = new Set(['first', 'representations']);

/**
 * The variables a document's cost depends on: those inside a `first` or `representations`
 * argument, or inside a directive (`@skip(if: $x)`). A slug or an id does not change the cost,
 * so requests differing only in those share one cached answer.
 */
const costVariablesOf = new WeakMap<DocumentNode, string[]>();
function costVariables(document: DocumentNode): string[] {
  let names = costVariablesOf.get(document);
  if (!names) {
    const found = new Set<string>();
    const collect = (node: ASTNode) => visit(node, { Variable: (v) => void found.add(v.name.value) });
    visit(document, {
      Argument: (argument) => void (COST_ARGUMENTS.has(argument.name.value) && collect(argument.value)),
      Directive: (directive) => {
        collect(directive);
        return false;
      },
    });
    costVariablesOf.set(document, (names = [...found].sort()));
  }
  return names;
}

/**
 * The cost of a document depends only on it, the operation and the variables it reads for cost:
 * Apollo hands the same DocumentNode for the same query text, so the answer is kept per document
 * (weakly) and per operation and those variables' values (at most 64 entries each).
 */
const costCache = new WeakMap<DocumentNode, Map<string, ReturnType<typeof queryCost>>>();
function cachedCost(schema: GraphQLSchema, document: DocumentNode, operationName: string | null | undefined, variables: Record<string, unknown>): ReturnType<typeof queryCost> {
  let byInput = costCache.get(document);
  if (!byInput) costCache.set(document, (byInput = new Map()));
  // Present or not, not only the value: an omitted variable takes its default, an explicit null does not.
  const key = JSON.stringify([operationName ?? null, costVariables(document).map((name) => (name in variables ? [variables[name] ?? null] : 0))]);
  if (byInput.has(key)) return byInput.get(key)!;
  const result = queryCost(schema, document, operationName, variables);
  // Large variables are not kept: the cache must not become a way to hold memory. Nor is a
  // refusal to coerce (null), which may come from a variable outside the key.
  if (key.length > 2048 || result === null) return result;
  setBounded(byInput, key, result, 64);
  return result;
}

/**
 * Refuses, before any SQL runs, an operation whose cost is over `limit` (QUERY_TOO_COMPLEX,
 * HTTP 400, `extensions.cost` and `limit`). A `first` outside 0–100 stays BAD_USER_INPUT on
 * `first` whatever the cost: at its field when the query is affordable, for the whole request
 * when it is not.
 */
export function queryCostPlugin(limit: number): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, operationName, request, schema }) {
          const result = cachedCost(schema, document, operationName, request.variables ?? {});
          if (!result) return;
          if ('tooLarge' in result) throw new QueryTooComplexError(limit + 1, limit, `Query is too large to cost (over ${MAX_QUERY_NODES} fields once fragments are expanded); the limit is ${limit}`);
          if (result.cost <= limit) return;
          if (result.firstOutOfRange) throw requestInputError('first', `first must be between 0 and ${MAX_PAGE_SIZE}`);
          throw new QueryTooComplexError(result.cost, limit);
        },
      };
    },
  };
}
