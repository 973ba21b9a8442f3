import { codes, type GqlResult, ok, startTestApp, usesRealPostgres, type TestApp } from '../../helpers/app';
import { createOrganization, uniqueEmail } from '../../helpers/factories';
import { socketWritesDuring } from '../../helpers/socket-writes';

/**
 * The request bootstrap in one round trip (PostgreSQL, pipelined): a read that needs nothing of
 * the session before it is sent (an organization by slug) opens the transaction itself — BEGIN,
 * the session and the read leave in one socket write — and COMMIT is the only other write.
 */
const onPostgres = usesRealPostgres() ? it : it.skip;
let app: TestApp;
const owner = uniqueEmail('trips');
const BY_SLUG = `query($s: String) { organization(slug: $s) { id name } }`;

// Without rate limits: a counter statement (a new lease when a minute's window turns, an attribution
// that expired while a slow machine ran the tests before) would open the transaction ahead of the
// read and add a write that has nothing to do with the bootstrap. Leases are tested on their own
// (test/integration/ratelimit/leases.test.ts).
beforeAll(async () => {
  app = await startTestApp({ env: { RATE_LIMITS: 'false' } });
});
afterAll(async () => {
  await app?.close();
});

/** Socket writes to PostgreSQL while `fn` runs. */
function writesToPostgres(fn: () => Promise<unknown>): Promise<number> {
  const port = Number(new URL(process.env.TEST_DATABASE_URL?.trim() || process.env.DATABASE_URL!.trim()).port || 5432);
  return socketWritesDuring(fn, (socket) => socket.remotePort === port);
}

onPostgres('an organization by slug costs two writes to PostgreSQL: BEGIN with the session and the read, then COMMIT', async () => {
  const org = await createOrganization(app, owner);
  // Warm: the user is provisioned (the first request of a new user writes them).
  for (let i = 0; i < 3; i += 1) ok(await app.gql(BY_SLUG, { s: org.slug }, { as: owner }));
  let answer: unknown;
  const writes = await writesToPostgres(async () => {
    answer = ok(await app.gql(BY_SLUG, { s: org.slug }, { as: owner }));
  });
  expect(answer).toEqual({ organization: { id: org.id, name: expect.any(String) } });
  expect(writes).toBe(2);
});

onPostgres('another tenant’s slug answers NOT_FOUND the same way, in as many writes', async () => {
  const other = await createOrganization(app, uniqueEmail('other'));
  for (let i = 0; i < 2; i += 1) expect(codes(await app.gql(BY_SLUG, { s: other.slug }, { as: owner }))).toEqual(['NOT_FOUND']);
  let result: GqlResult | undefined;
  const writes = await writesToPostgres(async () => {
    result = await app.gql(BY_SLUG, { s: other.slug }, { as: owner });
  });
  expect(codes(result!)).toEqual(['NOT_FOUND']);
  expect(result!.data).toEqual({ organization: null });
  expect(writes).toBe(2);
});

onPostgres('a list of organizations costs three writes: BEGIN with the session and which of the scope may refuse the token, the page, COMMIT', async () => {
  const LIST = `{ organizations(first: 5) { nodes { id } } }`;
  for (let i = 0; i < 3; i += 1) ok(await app.gql(LIST, {}, { as: owner }));
  let answer: { organizations: { nodes: Array<{ id: string }> } } | undefined;
  const writes = await writesToPostgres(async () => {
    answer = ok(await app.gql<{ organizations: { nodes: Array<{ id: string }> } }>(LIST, {}, { as: owner }));
  });
  expect(answer!.organizations.nodes.length).toBeGreaterThanOrEqual(1);
  expect(writes).toBe(3);
});

it('the user who may claim the seeded organization (ADMIN_EMAIL) owns it before the first read: that read sees it', async () => {
  // The admin's very first request reads the organization by slug, through row-level security.
  const result = await app.gql(`{ organization(slug: "default") { slug viewerRole { key } } }`, {}, { as: app.config.adminEmail });
  expect(ok(result)).toEqual({ organization: { slug: 'default', viewerRole: { key: 'owner' } } });
});

it('an operation that needs nothing of the database opens no transaction for a user', async () => {
  const viewer = uniqueEmail('catalog');
  // Provisioned first, so that what is counted is the catalog alone.
  ok(await app.gql(`{ me { user { id } } }`, {}, { as: viewer }));
  const result = await app.gql(`{ permissionCatalog { code } }`, {}, { as: viewer });
  expect(ok(result).permissionCatalog.length).toBeGreaterThan(10);
  expect(result.headers.get('x-sql-statements')).toBe('0');
});

describe('one organization’s workspaces bring their environments along', () => {
  const ENV = `mutation($w: ID!, $n: String!, $t: EnvironmentTier!) { createEnvironment(workspaceId: $w, input: { name: $n, tier: $t, resources: { cpu: 0.5, ramMb: 256, diskGb: 1 } }) { id } }`;
  const PAGE = (environments: string) => `query($s: String) { organization(slug: $s) { workspaces(first: 50) { nodes { id name ${environments} } } } }`;

  it('asking for the environments costs no statement, and they are the ones the workspace itself lists, in its order and with its filters', async () => {
    const viewer = uniqueEmail('along');
    const org = await createOrganization(app, viewer);
    const made: string[] = [];
    for (const [n, t] of [['Dev', 'DEV'], ['Stage', 'STAGE'], ['Prod', 'PROD'], ['Gone', 'DEV']] as const) {
      made.push(ok(await app.gql<{ createEnvironment: { id: string } }>(ENV, { w: org.defaultWorkspaceId, n, t }, { as: viewer })).createEnvironment.id);
    }
    ok(await app.gql(`mutation($id: ID!) { destroyEnvironment(id: $id) { id } }`, { id: made[3] }, { as: viewer }));
    // A second organization of the same owner, with an environment of its own: never listed here.
    const other = await createOrganization(app, viewer);
    ok(await app.gql(ENV, { w: other.defaultWorkspaceId, n: 'Elsewhere', t: 'DEV' }, { as: viewer }));

    const without = await app.gql(PAGE(''), { s: org.slug }, { as: viewer });
    const along = await app.gql<{ organization: { workspaces: { nodes: Array<Record<string, Array<{ id: string; name: string }>>> } } }>(
      PAGE(`environments { id name } all: environments(includeDestroyed: true) { id } dev: environments(tier: DEV) { name } full: environments { slug resources { cpu } }`),
      { s: org.slug },
      { as: viewer },
    );
    const [workspace] = ok(along).organization.workspaces.nodes;
    expect(workspace!.environments!.map((e) => e.name)).toEqual(['Dev', 'Stage', 'Prod']);
    expect(workspace!.all!.map((e) => e.id)).toEqual(made);
    expect(workspace!.dev).toEqual([{ name: 'Dev' }]);
    expect(workspace!.full).toEqual([
      { slug: 'dev', resources: { cpu: 0.5 } },
      { slug: 'stage', resources: { cpu: 0.5 } },
      { slug: 'prod', resources: { cpu: 0.5 } },
    ]);
    // The same list as the workspace's own (read by a statement of its own). Statements: a page whose environments
    // all need only the lean columns costs none more than the page without them; here the page brought the full
    // columns along (what `full` needs), and the three lean lists took one statement of their own.
    const own = ok(await app.gql<{ workspace: { environments: Array<{ id: string; name: string }> } }>(`query($id: ID!) { workspace(id: $id) { environments { id name } } }`, { id: org.defaultWorkspaceId }, { as: viewer }));
    expect(workspace!.environments).toEqual(own.workspace.environments);
    const lean = await app.gql(PAGE('environments { id name }'), { s: org.slug }, { as: viewer });
    expect(lean.headers.get('x-sql-statements')).toBe(without.headers.get('x-sql-statements'));
    expect(Number(along.headers.get('x-sql-statements'))).toBe(Number(without.headers.get('x-sql-statements')) + 1);
  });
});
