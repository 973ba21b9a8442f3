import crypto from 'node:crypto';
import { codes, type GqlResult, startTestApp, type TestApp } from '../../helpers/app';
import { uniqueEmail } from '../../helpers/factories';

let app: TestApp;
let owner: string;
beforeAll(async () => {
  app = await startTestApp();
  owner = uniqueEmail('echo');
});
afterAll(async () => {
  await app?.close();
});

/** A value that must never come back: it stands for a credential. */
const SECRET = `SECRET${crypto.randomBytes(8).toString('hex').toUpperCase()}`;
const WORKSPACE = crypto.randomUUID();
const CREATE = `mutation($w: ID!, $input: CreateEnvironmentInput!) { createEnvironment(workspaceId: $w, input: $input) { id } }`;
const valid = { name: 'Staging', tier: 'STAGE', resources: { cpu: 0.5, ramMb: 512, diskGb: 5 }, cloudCredentials: { awsSecretAccessKey: SECRET } };

function expectNoEcho(result: GqlResult): void {
  expect(JSON.stringify(result.errors)).not.toContain(SECRET);
  expect(JSON.stringify(result.errors)).not.toMatch(/Did you mean/);
  expect(result.headers.get('x-sql-statements') ?? '0').toBe('0');
}

describe('coercion errors of variables name the path and the problem, never the value', () => {
  it.each([
    ['an unknown field', { ...valid, nam: 'x' }, 'input.nam', 'nam', 'Field "nam" is not defined by type "CreateEnvironmentInput".'],
    ['a missing required field', { ...valid, name: undefined }, 'input.name', 'name', 'Field "name" of required type "String!" was not provided.'],
    ['a wrong scalar', { ...valid, resources: { cpu: 1, ramMb: SECRET, diskGb: 5 } }, 'input.resources.ramMb', 'resources.ramMb', 'Expected type "Int".'],
    ['a wrong enum', { ...valid, tier: SECRET }, 'input.tier', 'tier', 'Expected type "EnvironmentTier".'],
    ['an object where a scalar belongs', { ...valid, name: { secret: SECRET } }, 'input.name', 'name', 'Expected type "String".'],
  ])('%s', async (_case, input, at, field, problem) => {
    const result = await app.gql(CREATE, { w: WORKSPACE, input }, { as: owner });
    expect(result.status).toBe(400);
    expect(codes(result)).toEqual(['BAD_USER_INPUT']);
    expect(result.errors![0]!.message).toBe(`Variable "$input" got invalid value at "${at}"; ${problem}`);
    expect(result.errors![0]!.extensions).toMatchObject({ field, variable: 'input' });
    expectNoEcho(result);
  });

  it('a wrong top-level variable, and a required one left out', async () => {
    const wrong = await app.gql(CREATE, { w: { secret: SECRET }, input: valid }, { as: owner });
    expect(wrong.status).toBe(400);
    expect(wrong.errors![0]!).toMatchObject({ message: 'Variable "$w" got invalid value; Expected type "ID".', extensions: { code: 'BAD_USER_INPUT', field: 'w' } });
    expectNoEcho(wrong);
    const missing = await app.gql(CREATE, { input: valid }, { as: owner });
    expect(missing.status).toBe(400);
    expect(missing.errors![0]!).toMatchObject({ message: 'Variable "$w" of required type "ID!" was not provided.', extensions: { code: 'BAD_USER_INPUT', field: 'w' } });
  });
});

describe('validation errors of literals in the query never print the value', () => {
  const literal = (input: string) => `mutation { createEnvironment(workspaceId: "${WORKSPACE}", input: { ${input} }) { id } }`;
  const credentials = `cloudCredentials: { awsSecretAccessKey: "${SECRET}" }`;
  it.each([
    ['an unknown field', `nam: "x", name: "S", tier: STAGE, resources: { cpu: 1, ramMb: 1, diskGb: 1 }, ${credentials}`, 'Field "nam" is not defined by type "CreateEnvironmentInput".'],
    ['a missing required field', `tier: STAGE, resources: { cpu: 1, ramMb: 1, diskGb: 1 }, ${credentials}`, 'Field "CreateEnvironmentInput.name" of required type "String!" was not provided.'],
    ['a wrong scalar', `name: "S", tier: STAGE, resources: { cpu: 1, ramMb: "${SECRET}", diskGb: 1 }`, 'Int cannot represent non-integer value.'],
    ['a string for an enum', `name: "S", tier: "${SECRET}", resources: { cpu: 1, ramMb: 1, diskGb: 1 }`, 'Enum "EnvironmentTier" cannot represent non-enum value.'],
    ['an unknown enum value', `name: "S", tier: ${SECRET}, resources: { cpu: 1, ramMb: 1, diskGb: 1 }`, 'Value does not exist in "EnvironmentTier" enum.'],
    ['an object for a scalar argument', `name: "S", tier: STAGE, resources: { cpu: { k: "${SECRET}" }, ramMb: 1, diskGb: 1 }`, 'Float cannot represent non numeric value.'],
  ])('%s', async (_case, input, message) => {
    const result = await app.gql(literal(input), {}, { as: owner });
    expect(result.status).toBe(400);
    expect(codes(result)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(result.errors![0]!.message).toBe(message);
    expect((result.errors![0] as { locations?: unknown }).locations).toBeDefined();
    expectNoEcho(result);
  });
});

describe('NUL characters in the query text', () => {
  it('are refused with BAD_USER_INPUT before any SQL, in any string literal', async () => {
    for (const query of [
      `mutation { createOrganization(input: { name: "nul\\u0000org" }) { id } }`,
      `mutation($input: CreateOrganizationInput! = { name: "default\\u0000nul" }) { createOrganization(input: $input) { id } }`,
      `query { organization(slug: "a\\u0000b") { id } }`,
    ]) {
      const result = await app.gql(query, {}, { as: owner });
      expect(result.status).toBe(400);
      expect(result.errors).toEqual([{ message: 'Input must not contain NUL characters', extensions: { code: 'BAD_USER_INPUT', field: 'query' } }]);
      expect(result.headers.get('x-sql-statements')).toBe('0');
    }
    const count = await app.db.withConnection((r) => r.query(`SELECT count(*)::int AS n FROM organizations WHERE name LIKE 'nul%' OR name LIKE 'default%'`));
    expect(count).toEqual([{ n: 0 }]);
  });
});

describe('NUL characters in the variables of a GET request', () => {
  it('are refused with BAD_USER_INPUT: the JSON text hides them from the HTTP edge, the decoded variables do not', async () => {
    const query = encodeURIComponent('query($s: String) { organization(slug: $s) { id } }');
    // The URL carries `"acme\u0000"`: six ASCII characters that only JSON decoding turns into a NUL.
    const variables = encodeURIComponent(JSON.stringify({ s: 'acme\u0000' }));
    const res = await fetch(`${app.url}/graphql?query=${query}&variables=${variables}`, {
      headers: { authorization: `Bearer ${await app.token(owner)}`, 'apollo-require-preflight': 'true' },
    });
    const body = (await res.json()) as { errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };
    expect(res.status).toBe(400);
    expect(body.errors).toEqual([{ message: 'Input must not contain NUL characters', extensions: { code: 'BAD_USER_INPUT', field: 'variables' } }]);
    expect(res.headers.get('x-sql-statements')).toBe('0');
  });
});
