import path from 'node:path';
import type { GraphQLRequestContext, HeaderMap, HTTPGraphQLHead } from '@apollo/server';
import type { GatewayGraphQLRequestContext } from '@apollo/server-gateway-interface';

/**
 * Apollo Server builds, for every request it hands to a gateway's executor (the compiled
 * execution, ./executor.ts), a request context of the gateway's shape
 * (`makeGatewayGraphQLRequestContext`, @apollo/server 5.5) whose `response.http` is an object
 * literal with a `status` getter and setter — two new closures per request over Apollo's whole
 * request context. V8 stores such a literal's accessors as an accessor pair allocated in the old
 * generation, one per object; the young-generation collector (the scavenger) takes every pointer
 * from the old generation as a root, so a dead request's accessor pair keeps its closures, the
 * request context behind them and everything it reaches (the unit of work, loaders, rows,
 * entities, the answer) alive through every scavenge until the next full collection, copied and
 * promoted on the way. Measured on the side-by-side benchmark's Q2 (10 connections): 64 KB
 * promoted per request of 330 KB allocated, a scavenge of 5–6 ms every ~60 ms and a full
 * collection every few seconds; with the context below, 0.8 KB promoted, a scavenge of 1.7 ms, no
 * full collection (README, Performance, the twenty-third round).
 *
 * This is the same context, field for field, with the accessors on a class's prototype (nothing
 * allocated per request but the object). It replaces Apollo's function in Apollo's own module,
 * which its request pipeline calls through the module's exports; `useSharedGatewayContext`
 * reports whether it could (an Apollo release that moved or renamed it: the tests fail, and the
 * service logs a warning at start and works as before, with the garbage collector's cost). Its
 * `response.http` differs in one way nobody here reads: `status` is the prototype's, not an own
 * property (absent from `Object.keys`, a spread, JSON).
 */

/** The Fetch-style headers of a gateway request or response, over Apollo's HeaderMap (as Apollo's own adapter). */
class GatewayHeaders {
  constructor(private readonly map: HeaderMap) {}
  append(name: string, value: string): void {
    const existing = this.map.get(name);
    this.map.set(name, existing === undefined ? value : `${existing}, ${value}`);
  }
  delete(name: string): void {
    this.map.delete(name);
  }
  get(name: string): string | null {
    return this.map.get(name) ?? null;
  }
  has(name: string): boolean {
    return this.map.has(name);
  }
  set(name: string, value: string): void {
    this.map.set(name, value);
  }
  entries(): Iterator<[string, string]> {
    return this.map.entries();
  }
  keys(): Iterator<string> {
    return this.map.keys();
  }
  values(): Iterator<string> {
    return this.map.values();
  }
  [Symbol.iterator](): Iterator<[string, string]> {
    return this.map.entries();
  }
}

/** The gateway's view of the HTTP response: its status reads and writes Apollo's response head. */
class GatewayResponseHttp {
  readonly #head: HTTPGraphQLHead;
  readonly headers: GatewayHeaders;
  constructor(head: HTTPGraphQLHead) {
    this.#head = head;
    this.headers = new GatewayHeaders(head.headers);
  }
  get status(): number | undefined {
    return this.#head.status;
  }
  set status(status: number | undefined) {
    this.#head.status = status;
  }
}

type ApolloRequestContext = GraphQLRequestContext<Record<string, unknown>>;

/** What Apollo's pipeline passes along with the request context (ApolloServer and its internals). */
interface PipelineServer {
  logger: GatewayGraphQLRequestContext['logger'];
  cache: GatewayGraphQLRequestContext['cache'];
}

/** Apollo's makeGatewayGraphQLRequestContext, with no object literal holding accessors. */
export function gatewayRequestContext(context: ApolloRequestContext, server: PipelineServer, internals: { includeStacktraceInErrorResponses?: boolean }): GatewayGraphQLRequestContext {
  const incoming = context.request;
  const request: GatewayGraphQLRequestContext['request'] = {};
  if ('query' in incoming) request.query = incoming.query;
  if ('operationName' in incoming) request.operationName = incoming.operationName;
  if ('variables' in incoming) request.variables = incoming.variables;
  if ('extensions' in incoming) request.extensions = incoming.extensions;
  if (incoming.http) {
    const search = incoming.http.search;
    const question = search !== '' && !search.startsWith('?');
    request.http = { method: incoming.http.method, url: `https://unknown-url.invalid/${question ? '?' : ''}${search}`, headers: new GatewayHeaders(incoming.http.headers) };
  }
  return {
    request,
    response: { http: new GatewayResponseHttp(context.response.http) },
    logger: server.logger,
    schema: context.schema,
    schemaHash: 'schemaHash no longer exists since Apollo Server 4' as GatewayGraphQLRequestContext['schemaHash'],
    context: context.contextValue,
    cache: server.cache,
    queryHash: context.queryHash!,
    document: context.document!,
    source: context.source!,
    operationName: context.operationName as string | null,
    operation: context.operation!,
    errors: context.errors,
    metrics: context.metrics,
    debug: internals.includeStacktraceInErrorResponses,
    overallCachePolicy: context.overallCachePolicy,
    requestIsBatched: context.requestIsBatched,
  } as GatewayGraphQLRequestContext;
}

let installed: boolean | undefined;

/**
 * Makes Apollo Server build the gateway request context with `gatewayRequestContext` (once per
 * process). Returns whether Apollo's module was found and now uses it.
 */
export function useSharedGatewayContext(): boolean {
  if (installed !== undefined) return installed;
  try {
    // The module is not among the package's exports: it is reached by its file, next to the CommonJS entry the service loads.
    const file = path.join(path.dirname(require.resolve('@apollo/server')), 'utils', 'makeGatewayGraphQLRequestContext.js');
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- Apollo's own module object, whose export its pipeline calls
    const apolloModule = require(file) as { makeGatewayGraphQLRequestContext?: unknown };
    if (typeof apolloModule.makeGatewayGraphQLRequestContext !== 'function') return (installed = false);
    apolloModule.makeGatewayGraphQLRequestContext = gatewayRequestContext;
    // A frozen or accessor export would ignore the assignment: installed only if it now reads back.
    return (installed = apolloModule.makeGatewayGraphQLRequestContext === gatewayRequestContext);
  } catch {
    return (installed = false);
  }
}
