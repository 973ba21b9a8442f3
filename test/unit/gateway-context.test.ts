import path from 'node:path';
import { ApolloServer, HeaderMap } from '@apollo/server';
import type { GatewayGraphQLRequestContext, GatewayInterface } from '@apollo/server-gateway-interface';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { execute, printSchema } from 'graphql';
import { gatewayRequestContext, useSharedGatewayContext } from '../../src/graphql/gateway-context';

/**
 * Apollo Server's per-request gateway context (an object literal with a `status` getter and
 * setter: an accessor pair in the old generation per request) keeps every request alive until a
 * full collection; src/graphql/gateway-context.ts replaces it in Apollo's module with the same
 * context built from classes.
 */
const schema = makeExecutableSchema({ typeDefs: 'type Query { hello(name: String): String }', resolvers: { Query: { hello: (_: unknown, { name }: { name?: string }) => `hello ${name ?? 'you'}` } } });
const apolloModuleFile = path.join(path.dirname(require.resolve('@apollo/server')), 'utils', 'makeGatewayGraphQLRequestContext.js');

/** A gateway whose executor records the context it is given and answers with graphql-js, setting a status and a header as asked. */
function recordingGateway(seen: GatewayGraphQLRequestContext[]): GatewayInterface {
  return {
    async load() {
      return {
        executor: async (context) => {
          seen.push(context);
          const teapot = context.request.http?.headers.get('x-teapot');
          if (teapot) {
            context.response!.http!.status = 418;
            context.response!.http!.headers.set('x-answered-by', teapot);
          }
          return execute({ schema, document: context.document, variableValues: context.request.variables, contextValue: context.context });
        },
      };
    },
    onSchemaLoadOrUpdate(callback) {
      callback({ apiSchema: schema, coreSupergraphSdl: printSchema(schema) });
      return () => undefined;
    },
    async stop() {},
  };
}

async function post(apollo: ApolloServer<{ who: string }>, body: unknown, extra: Record<string, string> = {}) {
  const headers = new HeaderMap([['content-type', 'application/json'], ...Object.entries(extra)]);
  return apollo.executeHTTPGraphQLRequest({ httpGraphQLRequest: { method: 'POST', headers, search: '?x=1', body }, context: async () => ({ who: 'me' }) });
}

describe('the gateway request context Apollo Server hands the compiled executor', () => {
  const seen: GatewayGraphQLRequestContext[] = [];
  let apollo: ApolloServer<{ who: string }>;
  beforeAll(async () => {
    expect(useSharedGatewayContext()).toBe(true);
    apollo = new ApolloServer<{ who: string }>({ gateway: recordingGateway(seen) });
    await apollo.start();
  });
  afterAll(async () => {
    await apollo.stop();
  });

  it("is built by the service's function in Apollo's own module", () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the module Apollo's pipeline calls
    expect((require(apolloModuleFile) as { makeGatewayGraphQLRequestContext: unknown }).makeGatewayGraphQLRequestContext).toBe(gatewayRequestContext);
  });

  it('holds no accessor of its own: its response head has no per-request getter or setter', async () => {
    seen.length = 0;
    await post(apollo, { query: 'query Q($n: String) { hello(name: $n) }', variables: { n: 'a' } });
    await post(apollo, { query: 'query Q($n: String) { hello(name: $n) }', variables: { n: 'b' } });
    expect(seen).toHaveLength(2);
    for (const context of seen) {
      const http = context.response!.http!;
      for (const key of Reflect.ownKeys(http)) {
        const descriptor = Object.getOwnPropertyDescriptor(http, key)!;
        expect({ key, accessor: descriptor.get !== undefined || descriptor.set !== undefined }).toEqual({ key, accessor: false });
      }
    }
    expect(Object.keys(seen[0]!.response!.http!)).toEqual(['headers']);
  });

  it('passes what the executor reads, and its status and headers reach the HTTP response', async () => {
    seen.length = 0;
    const response = await post(apollo, { query: 'query Q($n: String) { hello(name: $n) }', operationName: 'Q', variables: { n: 'x' } }, { 'x-teapot': 'the executor' });
    expect(response.status).toBe(418);
    expect(response.headers.get('x-answered-by')).toBe('the executor');
    expect(response.body.kind === 'complete' && JSON.parse(response.body.string)).toEqual({ data: { hello: 'hello x' } });
    const [context] = seen;
    expect(context!.request).toMatchObject({ query: 'query Q($n: String) { hello(name: $n) }', operationName: 'Q', variables: { n: 'x' } });
    expect(context!.request.http).toMatchObject({ method: 'POST', url: 'https://unknown-url.invalid/?x=1' });
    expect(context!.request.http!.headers.get('x-teapot')).toBe('the executor');
    expect(context!.context).toEqual({ who: 'me' });
    expect(context!.operationName).toBe('Q');
    expect(context!.operation.operation).toBe('query');
    expect(context!.document.kind).toBe('Document');
    expect(context!.source).toBe('query Q($n: String) { hello(name: $n) }');
    expect(typeof context!.queryHash).toBe('string');
  });

  it("is Apollo's context field for field", () => {
    // Apollo's own function, from a fresh copy of its module (the shared one now holds the service's).
    let original!: (...args: unknown[]) => GatewayGraphQLRequestContext;
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a copy of Apollo's module as it ships
      original = (require(apolloModuleFile) as { makeGatewayGraphQLRequestContext: typeof original }).makeGatewayGraphQLRequestContext;
    });
    expect(original).not.toBe(gatewayRequestContext);
    const server = { logger: { name: 'logger' }, cache: { name: 'cache' } };
    const internals = { includeStacktraceInErrorResponses: false };
    const requestOf = (incoming: Record<string, unknown>, head: { status?: number; headers: HeaderMap }) => ({
      request: incoming,
      response: { http: head },
      schema,
      contextValue: { who: 'me' },
      queryHash: 'h',
      document: { kind: 'Document', definitions: [] },
      source: '{ hello }',
      operationName: 'operationName' in incoming ? incoming.operationName : null,
      operation: { kind: 'OperationDefinition', operation: 'query' },
      errors: [],
      metrics: { m: 1 },
      overallCachePolicy: { p: 1 },
      requestIsBatched: false,
    });
    const plain = (context: GatewayGraphQLRequestContext) => ({
      ...context,
      request: { ...context.request, ...(context.request.http ? { http: { ...context.request.http, headers: [...context.request.http.headers] } } : {}) },
      response: { http: { status: context.response!.http!.status, headers: [...context.response!.http!.headers] } },
    });
    const http = (search: string) => ({ method: 'POST', headers: new HeaderMap([['x-one', '1']]), search, body: {} });
    const incomings = [
      { query: '{ hello }', operationName: 'Q', variables: { a: 1 }, extensions: { e: true }, http: http('p=1') },
      { query: '{ hello }', http: http('') },
      { query: '{ hello }', variables: {}, http: http('?x') },
      { query: '{ hello }' },
    ];
    for (const incoming of incomings) {
      const theirs = original(requestOf(incoming, { status: 201, headers: new HeaderMap([['x-out', 'o']]) }), server, internals);
      const ours = gatewayRequestContext(requestOf(incoming, { status: 201, headers: new HeaderMap([['x-out', 'o']]) }) as never, server as never, internals);
      expect(plain(ours)).toStrictEqual(plain(theirs));
    }
    const responseHead = { status: 201, headers: new HeaderMap([['x-out', 'o']]) };
    const ours = gatewayRequestContext(requestOf(incomings[0]!, responseHead) as never, server as never, internals);
    // It writes through to Apollo's response head.
    ours.response!.http!.status = 202;
    ours.response!.http!.headers.append('x-out', 'p');
    expect(responseHead.status).toBe(202);
    expect(responseHead.headers.get('x-out')).toBe('o, p');
  });
});
