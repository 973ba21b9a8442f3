import type { GatewayExecutor, GatewayInterface } from '@apollo/server-gateway-interface';
import { trace } from '@opentelemetry/api';
import { MapperKind, mapSchema } from '@graphql-tools/utils';
import { type DocumentNode, type ExecutionResult, execute, getNullableType, GraphQLError, type GraphQLFieldResolver, type GraphQLSchema, isListType, printSchema } from 'graphql';
import { type CompiledQuery, compileQuery, isCompiledQuery } from 'graphql-jit';

const isThenable = (value: unknown): value is PromiseLike<unknown> => typeof (value as PromiseLike<unknown> | null)?.then === 'function';

/** A rejected item becomes its error as a value, which both executors report at the item's own index. */
const settledItem = (item: unknown): unknown => (isThenable(item) ? Promise.resolve(item).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error)))) : item);
const settledItems = (list: unknown): unknown => (Array.isArray(list) && list.some(isThenable) ? Promise.all(list.map(settledItem)) : list);

/**
 * graphql-jit 0.8 puts the null of a list item whose promise rejects at the end of the list
 * (`push`) instead of at the item's index: `[ok, rejected]` where `ok` settles later came out as
 * `[ok]`, and items could trade places. A list field's promised items are therefore settled
 * first (errors as values, as graphql-js also accepts them), so jit never meets a rejecting item.
 * In this schema that is the federation's `_entities`, whose references resolve one promise each.
 */
function withSettledListItems(schema: GraphQLSchema): GraphQLSchema {
  return mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (field) => {
      const resolve = field.resolve;
      if (!resolve || !isListType(getNullableType(field.type))) return field;
      const settled: GraphQLFieldResolver<unknown, unknown> = (source, args, context, info) => {
        const list = resolve(source, args, context, info);
        return isThenable(list) ? Promise.resolve(list).then(settledItems) : settledItems(list);
      };
      return { ...field, resolve: settled };
    },
  });
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
  /** Tracing is on (src/telemetry.ts): each operation gets its span, as graphql-js's instrumented `execute` would give it. */
  traced?: boolean;
}

/**
 * Executes operations with graphql-jit: each document (with its operation name) is compiled once
 * into a function that walks the selection without graphql-js's per-field interpretation (argument
 * coercion, path objects and promise bookkeeping for every field of every object). The resolvers,
 * the shield middleware and the error formatting are the schema's own, unchanged.
 *
 * Apollo Server parses and validates as before (its document cache hands back the same
 * DocumentNode for the same query, which keys the compiled function here, and lets it go with
 * the document); only execution is replaced, through Apollo's executor interface (`gateway`).
 * What jit does not compile, and a request it refuses before running any resolver (a variable
 * that does not coerce), goes to graphql-js's `execute`, so those errors read exactly as
 * graphql-js words them.
 */
export function compiledExecution(appSchema: GraphQLSchema, options: CompiledExecutionOptions = {}): GatewayInterface {
  const schema = withSettledListItems(appSchema);
  const compiled = new WeakMap<DocumentNode, Map<string, CompiledQuery | null>>();
  const compiledFor = (document: DocumentNode, operationName: string | null): CompiledQuery | null => {
    let byName = compiled.get(document);
    if (!byName) compiled.set(document, (byName = new Map()));
    const key = operationName ?? '';
    let query = byName.get(key);
    if (query === undefined) {
      const result = compileQuery(schema, document, operationName ?? undefined, { disablingCapturingStackErrors: true });
      query = isCompiledQuery(result) ? result : null;
      byName.set(key, query);
    }
    return query;
  };

  const run = async (document: DocumentNode, operationName: string | null, context: unknown, variables: Record<string, unknown> | undefined): Promise<ExecutionResult> => {
    const interpreted = () => execute({ schema, document, contextValue: context, variableValues: variables, operationName });
    const query = compiledFor(document, operationName);
    if (!query) return interpreted();
    const result = await query.query(undefined, context, variables);
    // Refused before any resolver ran (variables): graphql-js words the errors.
    if (!('data' in result) && result.errors?.length) return interpreted();
    return result.errors ? { ...result, errors: result.errors.map(asGraphQLError) } : result;
  };

  const tracer = options.traced ? trace.getTracer('tenant-service') : null;
  const executor: GatewayExecutor = ({ document, operationName, operation, request, context }) => {
    if (!tracer) return run(document, operationName, context, request.variables);
    // The operation's span (OpenTelemetry's GraphQL conventions: "<type> <name>"), parent of its SQL spans; no document, no values.
    const name = operationName ? `${operation.operation} ${operationName}` : operation.operation;
    return tracer.startActiveSpan(name, { attributes: { 'graphql.operation.type': operation.operation, ...(operationName ? { 'graphql.operation.name': operationName } : {}) } }, async (span) => {
      try {
        return await run(document, operationName, context, request.variables);
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
