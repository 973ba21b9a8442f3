import { getIntrospectionQuery } from 'graphql';
import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { createOrganization, uniqueEmail } from '../../helpers/factories';

let app: TestApp;
let owner: string;
beforeAll(async () => {
  app = await startTestApp();
  owner = uniqueEmail('cost');
  await createOrganization(app, owner);
});
afterAll(async () => {
  await app?.close();
});

const DASHBOARD = `query Dashboard { me { organizations(first: 25) { nodes { id
  workspaces(first: 10) { nodes { id environments { id } } }
  members(first: 10) { nodes { user { id } } } } } } }`;

const DEEP_LITERAL = `{ me { organizations(first: 100) { nodes { workspaces(first: 100) { nodes { organization { members(first: 100) { nodes { id } } } } } } } } }`;
const DEEP_VARIABLES = `query($a: Int, $b: Int, $c: Int) { me { organizations(first: $a) { nodes { workspaces(first: $b) { nodes { organization { members(first: $c) { nodes { id } } } } } } } } }`;

describe('query cost (SPEC §8)', () => {
  it('lets an ordinary dashboard through', async () => {
    const data = ok(await app.gql(DASHBOARD, {}, { as: owner }));
    expect(data.me.organizations.nodes.length).toBeGreaterThan(0);
  });

  it.each([
    ['literals', DEEP_LITERAL, {}],
    ['variables', DEEP_VARIABLES, { a: 100, b: 100, c: 100 }],
  ])('refuses first: 100 three connections deep, given as %s, before any SQL', async (_how, query, variables) => {
    const result = await app.gql(query, variables, { as: owner });
    expect(result.status).toBe(400);
    expect(codes(result)).toEqual(['QUERY_TOO_COMPLEX']);
    const { cost, limit } = result.errors![0]!.extensions!;
    expect(limit).toBe(100_000);
    expect(cost).toBeGreaterThan(1_000_000);
    expect(result.errors![0]!.message).toContain(`Query cost ${cost} exceeds the limit of 100000`);
    expect(result.headers.get('x-sql-statements')).toBe('0');
  });

  it('counts variables: the same query with small pages passes', async () => {
    ok(await app.gql(DEEP_VARIABLES, { a: 5, b: 5, c: 5 }, { as: owner }));
  });

  it('keeps first outside 0–100 a BAD_USER_INPUT on first, at the field when the query is affordable', async () => {
    const result = await app.gql(`{ me { user { id } organizations(first: 101) { nodes { id } } } }`, {}, { as: owner });
    expect(codes(result)).toEqual(['BAD_USER_INPUT']);
    expect(result.errors![0]!.extensions!.field).toBe('first');
    expect(result.errors![0]!.path).toEqual(['me', 'organizations']);
  });

  it('keeps first outside 0–100 a BAD_USER_INPUT on first whatever the cost', async () => {
    const result = await app.gql(DEEP_VARIABLES, { a: 1000, b: 100, c: 100 }, { as: owner });
    expect(result.status).toBe(400);
    expect(codes(result)).toEqual(['BAD_USER_INPUT']);
    expect(result.errors![0]!.extensions!.field).toBe('first');
    expect(result.headers.get('x-sql-statements')).toBe('0');
  });

  it('does not count introspection', async () => {
    const result = await app.gql(getIntrospectionQuery(), {}, { as: owner });
    expect(result.errors).toBeUndefined();
  });

  it('honours MAX_QUERY_COST', async () => {
    const strict = await startTestApp({ env: { MAX_QUERY_COST: '50' } });
    try {
      const result = await strict.gql(`{ me { organizations(first: 25) { nodes { id workspaces(first: 10) { nodes { id } } } } } }`, {}, { as: owner });
      expect(result.errors![0]!.extensions).toMatchObject({ code: 'QUERY_TOO_COMPLEX', limit: 50 });
    } finally {
      await strict.close();
    }
  });
});

describe('the other limits still hold', () => {
  it('a syntax error and more than 2000 tokens are GRAPHQL_PARSE_FAILED with HTTP 400', async () => {
    const syntax = await app.gql('{ me { ', {}, { as: owner });
    expect(syntax.status).toBe(400);
    expect(codes(syntax)).toEqual(['GRAPHQL_PARSE_FAILED']);
    const long = await app.gql(`{ ${Array.from({ length: 2001 }, () => '__typename').join(' ')} }`, {}, { as: owner });
    expect(long.status).toBe(400);
    expect(codes(long)).toEqual(['GRAPHQL_PARSE_FAILED']);
  });
});
