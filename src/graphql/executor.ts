import type { GatewayExecutor, GatewayInterface } from '@apollo/server-gateway-interface';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import {
  BREAK,
  defaultFieldResolver,
  type DocumentNode,
  type ExecutionResult,
  execute,
  getNamedType,
  getNullableType,
  GraphQLError,
  type GraphQLSchema,
  isLeafType,
  isListType,
  isObjectType,
  Kind,
  type OperationDefinitionNode,
  printSchema,
  visit,
} from 'graphql';
import { type CompiledQuery, compileQuery, isCompiledQuery } from 'graphql-jit';
import { isThenable } from '../common/thenable';
import { useSharedGatewayContext } from './gateway-context';
import { PLAIN_DATA_TYPES } from './plain-data';


/** A rejected item becomes its error as a value, which both engines report at the item's own index. */
const settledItem = (item: unknown): unknown => (isThenable(item) ? Promise.resolve(item).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error)))) : item);
const settledItems = (list: unknown): unknown => (Array.isArray(list) && list.some(isThenable) ? Promise.all(list.map(settledItem)) : list);

/**
 * Prepares the schema's fields for jit, in place (so that the schema, and the order of its types
 * in introspection, stays the one Apollo validates against):
 * - every field gets a resolver: jit reads a field without one inline, outside its error
 *   handling, and a getter that threw (an invitation's organization preview) left the request
 *   without an answer, holding its transaction. graphql-js's own default resolver keeps every
 *   read inside it. Except the leaf fields of a plain-data type (PlainDataObjectType): data
 *   properties, whose inline read cannot throw and costs no resolver call;
 * - a list field settles its promised items first (errors as values, which graphql-js accepts as
 *   well): jit 0.8 puts the null of an item whose promise rejects at the end of the list (`push`)
 *   instead of at the item's index, so `[ok, rejected]` where `ok` settles later came out as
 *   `[ok]`, and items could trade places. In this schema that is the federation's `_entities`,
 *   whose references resolve one promise each.
 */
function resolversForJit(schema: GraphQLSchema): void {
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    const plain = PLAIN_DATA_TYPES.has(type.name);
    for (const field of Object.values(type.getFields())) {
      // A plain-data type's leaf without a resolver is a data property: jit reads it inline, which cannot throw.
      if (plain && !field.resolve && isLeafType(getNamedType(field.type))) continue;
      const resolve = (field.resolve ??= defaultFieldResolver);
      if (!isListType(getNullableType(field.type))) continue;
      field.resolve = (source, args, context, info) => {
        const list = resolve(source, args, context, info);
        return isThenable(list) ? Promise.resolve(list).then(settledItems) : settledItems(list);
      };
    }
  }
}

/**
 * Whether graphql-jit 0.8 answers this operation exactly as graphql-js does. It does not for:
 * - a mutation: jit runs the mutation fields after one that failed (graphql-js stops there), and
 *   mutations are where PATCH semantics live (below);
 * - `@skip`/`@include`: jit marks the condition on the fragment's field nodes, which every other
 *   spread of that fragment then inherits (also across the operations of a cached document);
 * - a variable inside a literal object or list (`input: { website: $w }`): jit passes an omitted
 *   variable as an explicit null, which a PATCH would write;
 * - a variable's default value: jit copies it as JSON, so a custom scalar (DateTime) reaches the
 *   resolver unparsed.
 * Those go to graphql-js; reads with plain variables, the hot path, are compiled.
 */
export function compilable(document: DocumentNode, operation: OperationDefinitionNode): boolean {
  if (operation.operation !== 'query') return false;
  if (operation.variableDefinitions?.some((v) => v.defaultValue)) return false;
  let fits = true;
  visit(document, {
    Directive(node) {
      if (node.name.value === 'skip' || node.name.value === 'include') {
        fits = false;
        return BREAK;
      }
      return undefined;
    },
    Variable(_node, _key, _parent, _path, ancestors) {
      if (ancestors.some((a) => 'kind' in a && (a.kind === Kind.OBJECT || a.kind === Kind.LIST))) {
        fits = false;
        return BREAK;
      }
      return undefined;
    },
  });
  return fits;
}

/**
 * jit's errors are GraphQLErrors whose message cannot be written; plugins rewrite messages (armor
 * strips field suggestions), so each becomes graphql-js's own, with the same location, path and cause.
 */
function asGraphQLError(error: GraphQLError): GraphQLError {
  const copy = new GraphQLError(error.message, { path: error.path, originalError: error.originalError, extensions: error.extensions });
  (copy as { locations?: GraphQLError['locations'] }).locations = error.locations;
  return copy;
}

export interface CompiledExecutionOptions {
  /** Tracing is on (src/telemetry.ts): a compiled operation gets its span, as graphql-js's instrumented `execute` gives the others. */
  traced?: boolean;
}

/** A document's compiled operations by name; `seen` until its second request (a document sent once is not worth compiling). */
type Compiled = Map<string, CompiledQuery | 'seen' | null>;

/**
 * Executes the operations graphql-jit answers exactly as graphql-js does (see `compilable`) with
 * graphql-jit: each such document (with its operation name) is compiled, at its second request,
 * into a function that walks the selection without graphql-js's per-field interpretation
 * (argument coercion, path objects and promise bookkeeping for every field of every object).
 * Everything else, and a request jit refuses before running any resolver (a variable that does
 * not coerce), goes to graphql-js's `execute`, so those errors read exactly as graphql-js words
 * them. The resolvers, the shield middleware and the error formatting are the schema's own.
 *
 * Apollo Server parses and validates as before; its document cache hands back the same
 * DocumentNode for the same query, which keys the compiled function here (and lets it go with the
 * document). Only execution is replaced, through Apollo's executor interface (`gateway`).
 */
export function compiledExecution(schema: GraphQLSchema, options: CompiledExecutionOptions = {}): GatewayInterface {
  // Apollo's own per-request context for a gateway keeps every request alive until a full collection (./gateway-context.ts).
  useSharedGatewayContext();
  resolversForJit(schema);
  const compiled = new WeakMap<DocumentNode, Compiled>();
  const compiledFor = (document: DocumentNode, operation: OperationDefinitionNode, operationName: string | null): CompiledQuery | null => {
    let byName = compiled.get(document);
    if (!byName) compiled.set(document, (byName = new Map()));
    const key = operationName ?? '';
    const known = byName.get(key);
    if (known === undefined) {
      byName.set(key, 'seen');
      return null;
    }
    if (known !== 'seen') return known;
    const result = compilable(document, operation) ? compileQuery(schema, document, operationName ?? undefined, { disablingCapturingStackErrors: true }) : null;
    const query = result && isCompiledQuery(result) ? result : null;
    byName.set(key, query);
    return query;
  };

  const interpreted = (document: DocumentNode, operationName: string | null, context: unknown, variables: Record<string, unknown> | undefined) =>
    execute({ schema, document, contextValue: context, variableValues: variables, operationName });

  const run = async (query: CompiledQuery, document: DocumentNode, operationName: string | null, context: unknown, variables: Record<string, unknown> | undefined): Promise<ExecutionResult> => {
    const result = await query.query(undefined, context, variables);
    // Refused before any resolver ran (variables): graphql-js words the errors.
    if (!('data' in result) && result.errors?.length) return interpreted(document, operationName, context, variables);
    return result.errors ? { ...result, errors: result.errors.map(asGraphQLError) } : result;
  };

  const tracer = options.traced ? trace.getTracer('tenant-service') : null;
  const executor: GatewayExecutor = async ({ document, operationName, operation, request, context }) => {
    const query = compiledFor(document, operation, operationName);
    if (!query) return interpreted(document, operationName, context, request.variables);
    if (!tracer) return run(query, document, operationName, context, request.variables);
    // The operation's span (OpenTelemetry's GraphQL conventions: "<type> <name>"), parent of its SQL spans; no document, no values.
    const name = operationName ? `${operation.operation} ${operationName}` : operation.operation;
    return tracer.startActiveSpan(name, { attributes: { 'graphql.operation.type': operation.operation, ...(operationName ? { 'graphql.operation.name': operationName } : {}) } }, async (span) => {
      try {
        return await run(query, document, operationName, context, request.variables);
      } catch (error) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
        throw error;
      } finally {
        span.end();
      }
    });
  };

  return {
    async load() {
      return { executor };
    },
    onSchemaLoadOrUpdate(callback) {
      callback({ apiSchema: schema, coreSupergraphSdl: printSchema(schema) });
      return () => undefined;
    },
    async stop() {},
  };
}
