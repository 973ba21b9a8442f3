import type { GatewayGraphQLRequestContext } from '@apollo/server-gateway-interface';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { execute, type ExecutionResult, getOperationAST, GraphQLError, parse } from 'graphql';
import path from 'node:path';
import { compilable, compiledExecution } from '../../src/graphql/executor';
import { gatewayRequestContext } from '../../src/graphql/gateway-context';
import { NotFoundError } from '../../src/common/errors';

const later = <T>(ms: number, value: T): Promise<T> => new Promise((resolve) => setTimeout(() => resolve(value), ms));

const schema = makeExecutableSchema({
  typeDefs: `
    union Thing = A | B
    type A { id: ID! }
    type B { id: ID! secret: String! }
    type Preview { name: String slug: String }
    type Query {
      things(ids: [ID!]!): [Thing]!
      strict(ids: [ID!]!): [A!]
      b: B
      count(n: Int!): Int
      preview: Preview
    }
    type Mutation { step(n: Int!): [Int!]! }
  `,
  resolvers: {
    Thing: { __resolveType: (o: { t: string }) => o.t },
    Query: {
      // One promise per item, as the federation's _entities: 'slow' settles late, 'gone' rejects at once.
      things: (_: unknown, { ids }: { ids: string[] }) =>
        ids.map((id) => (id === 'gone' ? Promise.reject(new NotFoundError('Thing')) : id === 'slow' ? later(20, { t: 'A', id }) : { t: id.startsWith('b') ? 'B' : 'A', id })),
      strict: (_: unknown, { ids }: { ids: string[] }) => ids.map((id) => (id === 'gone' ? Promise.reject(new NotFoundError('A')) : later(5, { id }))),
      b: () => ({ id: 'b1' }),
      count: (_: unknown, { n }: { n: number }) => n,
      // A preview whose hidden fields are getters that throw, and no resolvers of its own.
      preview: () => ({
        name: 'Acme',
        get slug(): string {
          throw new NotFoundError('Organization');
        },
      }),
    },
    B: { secret: () => Promise.reject(new NotFoundError('Secret')) },
    Mutation: {
      step: (() => {
        const seen: number[] = [];
        return async (_: unknown, { n }: { n: number }) => {
          await later(10 - n * 3, null);
          seen.push(n);
          return [...seen];
        };
      })(),
    },
  },
});

let executor: NonNullable<Awaited<ReturnType<ReturnType<typeof compiledExecution>['load']>>['executor']>;
beforeAll(async () => {
  executor = (await compiledExecution(schema).load({ apollo: {} })).executor!;
});

/** The request as the compiled executor answers it at its second sight (the first is graphql-js's), and as graphql-js answers it. */
async function run(query: string, variables?: Record<string, unknown>): Promise<{ compiled: ExecutionResult; interpreted: ExecutionResult }> {
  const document = parse(query);
  const operation = getOperationAST(document)!;
  const request = { document, operation, operationName: operation.name?.value ?? null, request: { variables }, context: {} } as unknown as GatewayGraphQLRequestContext;
  await executor(request);
  const compiled = await executor(request);
  const interpreted = await execute({ schema, document, variableValues: variables });
  return { compiled, interpreted };
}

const shape = (result: ExecutionResult) => JSON.parse(JSON.stringify(result)) as unknown;

describe('compiled execution (graphql-jit behind Apollo)', () => {
  it("has Apollo build the executor's per-request context without accessors (src/graphql/gateway-context.ts)", () => {
    const apolloModule = path.join(path.dirname(require.resolve('@apollo/server')), 'utils', 'makeGatewayGraphQLRequestContext.js');
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the module Apollo's pipeline calls
    expect((require(apolloModule) as { makeGatewayGraphQLRequestContext: unknown }).makeGatewayGraphQLRequestContext).toBe(gatewayRequestContext);
  });

  it('keeps every list item at its index when some items reject at once and others settle later (graphql-jit 0.8 appends them)', async () => {
    const { compiled, interpreted } = await run(`{ things(ids: ["slow", "gone", "a1", "gone", "b2", "gone"]) { __typename ... on A { id } ... on B { id } } }`);
    expect(compiled.data).toEqual({
      things: [{ __typename: 'A', id: 'slow' }, null, { __typename: 'A', id: 'a1' }, null, { __typename: 'B', id: 'b2' }, null],
    });
    expect(compiled.errors!.map((e) => [e.path, e.message, e.extensions?.code])).toEqual([
      [['things', 1], 'Thing not found', 'NOT_FOUND'],
      [['things', 3], 'Thing not found', 'NOT_FOUND'],
      [['things', 5], 'Thing not found', 'NOT_FOUND'],
    ]);
    expect(shape(compiled)).toEqual(shape(interpreted));
  });

  it('nulls a list of non-null items when one of them rejects, as graphql-js does', async () => {
    const { compiled, interpreted } = await run(`{ strict(ids: ["x", "gone", "y"]) { id } }`);
    expect(compiled.data).toEqual({ strict: null });
    expect(compiled.errors!.map((e) => [e.path, e.extensions?.code])).toEqual([[['strict', 1], 'NOT_FOUND']]);
    expect(shape(compiled)).toEqual(shape(interpreted));
  });

  it("reports a field's error as graphql-js's own GraphQLError: cause kept, message writable (armor rewrites it), location and path", async () => {
    const { compiled, interpreted } = await run(`{ b { id secret } }`);
    expect(compiled.data).toEqual({ b: null });
    const [error] = compiled.errors!;
    expect(error).toBeInstanceOf(GraphQLError);
    expect(Object.getPrototypeOf(error)).toBe(GraphQLError.prototype);
    expect(error!.originalError).toBeInstanceOf(NotFoundError);
    expect([error!.path, error!.locations, error!.extensions]).toEqual([['b', 'secret'], [{ line: 1, column: 10 }], { code: 'NOT_FOUND' }]);
    expect(shape(compiled)).toEqual(shape(interpreted));
    (error as { message: string }).message = 'rewritten';
    expect(error!.message).toBe('rewritten');
  });

  it('answers a field without a resolver whose getter throws with the error, as graphql-js (jit read it inline and never answered)', async () => {
    const { compiled, interpreted } = await run(`{ preview { name slug } }`);
    expect(compiled.data).toEqual({ preview: { name: 'Acme', slug: null } });
    expect(compiled.errors!.map((e) => [e.path, e.extensions?.code])).toEqual([[['preview', 'slug'], 'NOT_FOUND']]);
    expect(shape(compiled)).toEqual(shape(interpreted));
  });

  it('words a variable that does not coerce exactly as graphql-js (no data, nothing resolved)', async () => {
    const { compiled, interpreted } = await run(`query Q($n: Int!) { count(n: $n) }`, { n: 'many' });
    expect(compiled.data).toBeUndefined();
    expect(compiled.errors!.map((e) => e.message)).toEqual(['Variable "$n" got invalid value "many"; Int cannot represent non-integer value: "many"']);
    expect(shape(compiled)).toEqual(shape(interpreted));
    const ok = await run(`query Q($n: Int!) { count(n: $n) }`, { n: 3 });
    expect(ok.compiled).toEqual({ data: { count: 3 } });
  });

  it('compiles only what graphql-jit answers as graphql-js does: queries without @skip/@include, variable defaults or variables inside literal values', () => {
    const fits = (query: string) => {
      const document = parse(query);
      return compilable(document, getOperationAST(document)!);
    };
    expect(fits(`query($n: Int!) { count(n: $n) things(ids: ["a"]) { __typename } }`)).toBe(true);
    expect(fits(`{ b { ...F } } fragment F on B { id }`)).toBe(true);
    expect(fits(`mutation { step(n: 1) }`)).toBe(false);
    expect(fits(`{ b { ...F @skip(if: true) } } fragment F on B { id }`)).toBe(false);
    expect(fits(`{ b { id @include(if: false) } }`)).toBe(false);
    expect(fits(`query($n: Int = 3) { count(n: $n) }`)).toBe(false);
    expect(fits(`query($i: ID!) { things(ids: [$i]) { __typename } }`)).toBe(false);
    expect(fits(`query($i: [ID!]!) { things(ids: $i) { __typename } }`)).toBe(true);
  });

  it("runs a mutation's fields one after the other, through graphql-js", async () => {
    const { compiled } = await run(`mutation { first: step(n: 1) second: step(n: 2) third: step(n: 3) }`);
    // Each field sees the steps before it (the slowest is the first: run at once, it would finish last).
    const { first, second, third } = compiled.data as Record<string, number[]>;
    expect([first!.at(-1), second!.at(-1), third!.at(-1)]).toEqual([1, 2, 3]);
    expect([second!.length - first!.length, third!.length - second!.length]).toEqual([1, 1]);
  });
});
