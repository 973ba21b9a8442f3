import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { createOrganization, uniqueEmail } from '../../helpers/factories';

/**
 * The query limits of SPEC §8, each at its edge: the last value that passes and the first that
 * is refused, with the exact status and code. (Cost above the limit with variables, `first`
 * outside 0–100 and more than 2000 tokens by syntax are in query-cost.test.ts.)
 */
let app: TestApp;
let owner: string;
beforeAll(async () => {
  app = await startTestApp();
  owner = uniqueEmail('limits');
  await createOrganization(app, owner);
});
afterAll(async () => {
  await app?.close();
});

/** A query `depth` fields deep along a real path (me › organizations › nodes › workspaces › nodes › organization › …). */
function queryOfDepth(depth: 10 | 11): string {
  const leaf = depth === 10 ? 'id' : 'workspaces(first: 1) { totalCount }';
  // me(1) organizations(2) nodes(3) workspaces(4) nodes(5) organization(6) workspaces(7) nodes(8) organization(9) leaf(10[, 11])
  return `{ me { organizations(first: 1) { nodes { workspaces(first: 1) { nodes { organization { workspaces(first: 1) { nodes { organization { ${leaf} } } } } } } } } } }`;
}

const repeat = (n: number, text: (i: number) => string): string => Array.from({ length: n }, (_, i) => text(i)).join(' ');

async function post(body: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const token = await app.token(owner);
  const res = await fetch(`${app.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers }, body });
  return { status: res.status, body: await res.json() };
}

describe('query limits at their edges (SPEC §8)', () => {
  it('depth: 10 passes, 11 is refused with HTTP 400 GRAPHQL_VALIDATION_FAILED before any SQL', async () => {
    const ten = ok(await app.gql(queryOfDepth(10), {}, { as: owner }));
    expect(ten.me.organizations.nodes).toHaveLength(1);
    const eleven = await app.gql(queryOfDepth(11), {}, { as: owner });
    expect(eleven.status).toBe(400);
    expect(codes(eleven)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(eleven.errors![0]!.message).toContain('Query depth limit of 10 exceeded, found 11');
    expect(eleven.headers.get('x-sql-statements')).toBe('0');
  });

  it('aliases: 15 pass, 16 are refused with HTTP 400 GRAPHQL_VALIDATION_FAILED', async () => {
    // (armor lets aliases of __typename through uncounted: a real field is aliased here.)
    const aliased = (n: number) => `{ me { user { ${repeat(n, (i) => `a${i}: email`)} } } }`;
    const fifteen = ok(await app.gql(aliased(15), {}, { as: owner }));
    expect(Object.values(fifteen.me.user)).toEqual(Array.from({ length: 15 }, () => owner));
    const sixteen = await app.gql(aliased(16), {}, { as: owner });
    expect(sixteen.status).toBe(400);
    expect(codes(sixteen)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(sixteen.errors![0]!.message).toContain('Aliases limit of 15 exceeded, found 16');
  });

  it('directives: 50 pass, 51 are refused with HTTP 400 GRAPHQL_VALIDATION_FAILED', async () => {
    const fifty = ok(await app.gql(`{ ${repeat(50, () => '__typename @include(if: true)')} }`, {}, { as: owner }));
    expect(fifty).toEqual({ __typename: 'Query' });
    const fiftyOne = await app.gql(`{ ${repeat(51, () => '__typename @include(if: true)')} }`, {}, { as: owner });
    expect(fiftyOne.status).toBe(400);
    expect(codes(fiftyOne)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(fiftyOne.errors![0]!.message).toContain('Directives limit of 50 exceeded, found 51');
  });

  it('tokens: 2000 pass, 2001 are refused with HTTP 400 GRAPHQL_PARSE_FAILED', async () => {
    // Scalar fields of Organization in turn (graphql-js stops validating thousands of copies of one field).
    const fields = ['id', 'name', 'slug', 'description', 'website', 'logoUrl', 'industry', 'primaryDomain', 'contactEmail', 'billingEmail', 'supportTier', 'status', 'createdAt', 'updatedAt', 'deletedAt', 'purgeAt', 'isActive'];
    // `{ me { organizations ( first : 1 ) { nodes {` is 12 tokens, `} } } }` 4 more (the end of the document is not one).
    const query = (tokens: number) => `{ me { organizations(first: 1) { nodes { ${repeat(tokens - 16, (i) => fields[i % fields.length]!)} } } } }`;
    const atLimit = ok(await app.gql(query(2000), {}, { as: owner }));
    expect(atLimit.me.organizations.nodes).toHaveLength(1);
    const over = await app.gql(query(2001), {}, { as: owner });
    expect(over.status).toBe(400);
    expect(codes(over)).toEqual(['GRAPHQL_PARSE_FAILED']);
    expect(over.errors![0]!.message).toContain('Document contains more that 2000 tokens');
  });

  it('cost: exactly MAX_QUERY_COST (100 000) passes, 100 001 is refused with HTTP 400 QUERY_TOO_COMPLEX naming both', async () => {
    // me 1 + user 1
    // + o1: 1 + 9 × (1 + (1 + 100 × (1 + 100 environments)))   = 90 919
    // + o2: 1 + 90 × (1 + (1 + 98 × 1))                         =  9 001
    // + o3: 1 + n × 1                                            = n + 1
    const query = (n: number) => `{ me { user { id }
      o1: organizations(first: 9) { nodes { workspaces(first: 100) { nodes { environments { id } } } } }
      o2: organizations(first: 90) { nodes { workspaces(first: 98) { nodes { id } } } }
      o3: organizations(first: ${n}) { nodes { id } } } }`;
    const atLimit = ok(await app.gql(query(77), {}, { as: owner }));
    expect(atLimit.me.o3.nodes).toHaveLength(1);
    const over = await app.gql(query(78), {}, { as: owner });
    expect(over.status).toBe(400);
    expect(codes(over)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(over.errors![0]!.extensions).toMatchObject({ code: 'QUERY_TOO_COMPLEX', cost: 100_001, limit: 100_000 });
    expect(over.errors![0]!.message).toContain('Query cost 100001 exceeds the limit of 100000');
    expect(over.headers.get('x-sql-statements')).toBe('0');
  });

  it('cost: one document is priced per value of the variables it reads for cost, whatever else varies and in any order', async () => {
    // me + user + organization 3, organizations 1 + $n × (1 + workspaces (1 + 100 × (1 + 100 environments))): 101 024 for 10.
    // $slug does not change the cost; $n and $deep do.
    const query = `query Priced($n: Int, $slug: String, $deep: Boolean!) { me { user { id } }
      organization(slug: $slug) { id }
      organizations(first: $n) { nodes { workspaces(first: 100) { nodes { environments @include(if: $deep) { id } } } } } }`;
    const run = (variables: Record<string, unknown>) => app.gql(query, variables, { as: owner });
    // A refusal to coerce a variable the cost does not read is not remembered as "no cost".
    const bad = await run({ n: 10, slug: 42, deep: true });
    expect(bad.status).toBe(400);
    expect(codes(bad)).toEqual(['BAD_USER_INPUT']);
    for (const slug of ['one', 'two']) {
      const over = await run({ n: 10, slug, deep: true });
      expect(codes(over)).toEqual(['QUERY_TOO_COMPLEX']);
      expect(over.errors![0]!.extensions).toMatchObject({ cost: 101_024, limit: 100_000 });
    }
    // The same slug with fewer organizations, or without the environments, is affordable.
    expect(codes(await run({ n: 9, slug: 'one', deep: true }))).toEqual(['NOT_FOUND']);
    expect(codes(await run({ n: 10, slug: 'one', deep: false }))).toEqual(['NOT_FOUND']);
    expect(codes(await run({ n: 10, slug: 'two', deep: true }))).toEqual(['QUERY_TOO_COMPLEX']);
  });

  it('cost: an omitted variable is priced with its default, never with the cost of an explicit null', async () => {
    // first: $n → default 100 when omitted, the field's default (20) when null: 1 + 100 × (1 + 1 + 100 × (1 + 100)) + 1.
    const query = `query Defaulted($n: Int = 100) { me { organizations(first: $n) { nodes { id workspaces(first: $n) { nodes { id environments { id } } } } } } }`;
    const withNull = await app.gql(query, { n: null }, { as: owner });
    expect(withNull.status).toBe(200);
    const omitted = await app.gql(query, {}, { as: owner });
    expect(codes(omitted)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(omitted.errors![0]!.extensions).toMatchObject({ cost: 1_010_202, limit: 100_000 });
  });

  it('body: 1 MiB exactly passes the size check, one byte more is HTTP 413 PAYLOAD_TOO_LARGE', async () => {
    const body = (size: number) => {
      const skeleton = JSON.stringify({ query: '{ __typename }', variables: { pad: '' } });
      return JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(size - skeleton.length) } });
    };
    const atLimit = body(1024 * 1024);
    expect(Buffer.byteLength(atLimit)).toBe(1_048_576);
    const passed = await post(atLimit);
    expect(passed).toEqual({ status: 200, body: { data: { __typename: 'Query' } } });
    const refused = await post(body(1024 * 1024 + 1));
    expect(refused.status).toBe(413);
    expect(refused.body.errors.map((e: any) => e.extensions.code)).toEqual(['PAYLOAD_TOO_LARGE']);
  });

  it('no suggestions in validation errors: a misspelt field, argument or enum value is named, never completed', async () => {
    const cases: Array<[string, string]> = [
      [`{ me { usr { id } } }`, 'Cannot query field "usr" on type "Viewer".'],
      [`{ organizations(frist: 1) { totalCount } }`, 'Unknown argument "frist" on field "Query.organizations".'],
    ];
    for (const [query, message] of cases) {
      const result = await app.gql(query, {}, { as: owner });
      expect(result.status).toBe(400);
      expect(codes(result)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
      expect(result.errors![0]!.message).toBe(message);
    }
    const enumValue = await app.gql(`{ me { organizations { nodes { workspaces { nodes { environments(tier: PRODUCTON) { id } } } } } } }`, {}, { as: owner });
    expect(enumValue.status).toBe(400);
    expect(codes(enumValue)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(enumValue.errors![0]!.message).not.toMatch(/Did you mean|PRODUCTION|Suggestion/i);
  });

  it('HTTP batching is refused: an array of operations is HTTP 400 and runs none of them', async () => {
    const name = `Batched ${uniqueEmail('b')}`;
    const batch = JSON.stringify([{ query: '{ __typename }' }, { query: `mutation($n: String!) { createOrganization(input: { name: $n }) { id } }`, variables: { n: name } }]);
    const refused = await post(batch);
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toContain('Operation batching disabled');
    const mine = ok(await app.gql(`{ me { organizations(first: 100) { nodes { name } } } }`, {}, { as: owner }));
    expect(mine.me.organizations.nodes.map((o: { name: string }) => o.name)).not.toContain(name);
  });
});

describe('introspection in production (SPEC §8)', () => {
  const production = {
    NODE_ENV: 'production',
    SECRETS_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'),
    // Production requires an external issuer; the test app verifies with its dev issuer all the same.
    AUTH_JWKS_URL: 'https://idp.invalid/.well-known/jwks.json',
    AUTH_ISSUER: 'https://idp.invalid/',
    AUTH_AUDIENCE: 'tenant-service',
  };

  it('is off by default in production (HTTP 400), while _service still answers for gateways', async () => {
    const prod = await startTestApp({ env: production });
    try {
      for (const query of [`{ __schema { queryType { name } } }`, `{ __type(name: "Organization") { name } }`]) {
        const refused = await prod.gql(query, {}, { as: owner });
        expect(refused.status).toBe(400);
        expect(codes(refused)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
        expect(refused.errors![0]!.message).toMatch(/introspection is not allowed/);
      }
      const sdl = ok(await prod.gql(`{ _service { sdl } }`));
      expect(sdl._service.sdl).toContain('type Organization');
    } finally {
      await prod.close();
    }
  });

  it('is on in production with GRAPHQL_INTROSPECTION=true', async () => {
    const prod = await startTestApp({ env: { ...production, GRAPHQL_INTROSPECTION: 'true' } });
    try {
      const allowed = ok(await prod.gql(`{ __schema { queryType { name } } __type(name: "Organization") { name } }`, {}, { as: owner }));
      expect(allowed).toEqual({ __schema: { queryType: { name: 'Query' } }, __type: { name: 'Organization' } });
    } finally {
      await prod.close();
    }
  });
});
