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
