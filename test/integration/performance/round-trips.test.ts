import { Client } from 'pg';
import { codes, type GqlResult, ok, startTestApp, usesRealPostgres, type TestApp } from '../../helpers/app';
import { addMember, createOrganization, setFeatureFlag, uniqueEmail } from '../../helpers/factories';
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
// COMMIT awaited, never deferred (DB_COMMIT_DEFER_MS=0): a query's deferred COMMIT would leave in
// the next request's write, or on its own a moment later, inside or outside the counted window.
// The deferral is tested below, with a deferral long enough to be certain of.
beforeAll(async () => {
  app = await startTestApp({ env: { RATE_LIMITS: 'false', DB_COMMIT_DEFER_MS: '0' } });
});
afterAll(async () => {
  await app?.close();
});

/** An organization read by slug while `count` counts socket writes: its answer and the count. */
async function readBySlug(target: TestApp, slug: string, as: string, count: (fn: () => Promise<unknown>) => Promise<number>) {
  let answer: unknown;
  const writes = await count(async () => {
    answer = ok(await target.gql(BY_SLUG, { s: slug }, { as }));
  });
  return { answer, writes };
}

/** Socket writes to PostgreSQL while `fn` runs. */
function writesToPostgres(fn: () => Promise<unknown>): Promise<number> {
  const port = Number(new URL(process.env.TEST_DATABASE_URL?.trim() || process.env.DATABASE_URL!.trim()).port || 5432);
  return socketWritesDuring(fn, (socket) => socket.remotePort === port);
}

onPostgres('an organization by slug costs two writes to PostgreSQL: BEGIN with the session and the read, then COMMIT', async () => {
  const org = await createOrganization(app, owner);
  // Warm: the user is provisioned (the first request of a new user writes them).
  for (let i = 0; i < 3; i += 1) ok(await app.gql(BY_SLUG, { s: org.slug }, { as: owner }));
  const { answer, writes } = await readBySlug(app, org.slug, owner, writesToPostgres);
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

describe('an organization asked for with its owner brings the owner along', () => {
  const BY = (fields: string) => `query($id: ID, $s: String) { organization(id: $id, slug: $s) { id ${fields} } }`;
  const founder = uniqueEmail('founder');
  const member = uniqueEmail('member');
  const stranger = uniqueEmail('stranger');
  let org: Awaited<ReturnType<typeof createOrganization>>;
  let others: Awaited<ReturnType<typeof createOrganization>>;

  beforeAll(async () => {
    org = await createOrganization(app, founder);
    await addMember(app, org.id, member, 'member');
    others = await createOrganization(app, stranger);
  });

  it('by slug and by id, for its owner and for a member: the owner’s user, as Organization.owner reads it on its own', async () => {
    // Read on its own: a list of organizations asks the owner loader (a statement of its own).
    const listed = ok(await app.gql<{ organizations: { nodes: Array<{ id: string; owner: Record<string, unknown> }> } }>(
      `{ organizations(first: 50) { nodes { id owner { id email name } } } }`, {}, { as: member },
    )).organizations.nodes.find((o) => o.id === org.id)!.owner;
    expect(listed.email).toBe(founder);
    for (const as of [founder, member]) {
      for (const vars of [{ s: org.slug }, { id: org.id }, { id: org.id, s: org.slug }]) {
        expect(ok(await app.gql(BY('owner { id email name }'), vars, { as })).organization).toEqual({ id: org.id, owner: listed });
      }
    }
  });

  it('at no statement of its own, by slug and by id', async () => {
    for (const vars of [{ s: org.slug }, { id: org.id }]) {
      const without = await app.gql(BY('name'), vars, { as: member });
      const withOwner = await app.gql(BY('name owner { email } again: owner { name }'), vars, { as: member });
      expect(ok(withOwner).organization.owner.email).toBe(founder);
      expect(withOwner.headers.get('x-sql-statements')).toBe(without.headers.get('x-sql-statements'));
    }
  });

  it('another tenant’s organization stays NOT_FOUND, by slug and by id, and shows nothing of its owner', async () => {
    for (const vars of [{ s: others.slug }, { id: others.id }]) {
      const result = await app.gql(BY('owner { email }'), vars, { as: member });
      expect(codes(result)).toEqual(['NOT_FOUND']);
      expect(result.data).toEqual({ organization: null });
      expect(JSON.stringify({ data: result.data, errors: result.errors })).not.toContain(stranger);
    }
  });
});

/** Environments for the look-ahead tests below, and each workspace's lists as it reads them itself (statements of its own). */
const ENV = `mutation($w: ID!, $n: String!, $t: EnvironmentTier!) { createEnvironment(workspaceId: $w, input: { name: $n, tier: $t, resources: { cpu: 0.5, ramMb: 256, diskGb: 1 } }) { id } }`;
const OWN = `query($id: ID!) { workspace(id: $id) { environments { id name } all: environments(includeDestroyed: true) { id name } full: environments { slug resources { cpu } } } }`;
type Listed = Array<{ id: string; name?: string; slug?: string; resources?: { cpu: number }; organization?: { id: string }; workspace?: { id: string } }>;

describe('one organization’s workspaces bring their environments along', () => {
  const PAGE = (environments: string) => `query($s: String) { organization(slug: $s) { workspaces(first: 50) { nodes { id name ${environments} } } } }`;
  type Page = { organization: { workspaces: { nodes: Array<{ id: string; name: string } & Record<string, Listed>> } } };
  const viewer = uniqueEmail('along');
  let org: Awaited<ReturnType<typeof createOrganization>>;
  /** Each workspace's lists as the workspace itself reads them (statements of its own), by workspace id. */
  const own = new Map<string, Record<string, Listed>>();

  beforeAll(async () => {
    org = await createOrganization(app, viewer);
    const env = async (w: string, n: string, t: string) => ok(await app.gql<{ createEnvironment: { id: string } }>(ENV, { w, n, t }, { as: viewer })).createEnvironment.id;
    await env(org.defaultWorkspaceId, 'Dev', 'DEV');
    await env(org.defaultWorkspaceId, 'Stage', 'STAGE');
    const gone = await env(org.defaultWorkspaceId, 'Gone', 'DEV');
    await env(org.defaultWorkspaceId, 'Prod', 'PROD');
    ok(await app.gql(`mutation($id: ID!) { destroyEnvironment(id: $id) { id } }`, { id: gone }, { as: viewer }));
    // A second workspace with environments of its own, a third with none.
    const second = ok(await app.gql<{ createWorkspace: { id: string } }>(`mutation($o: ID!) { createWorkspace(organizationId: $o, input: { name: "Second" }) { id } }`, { o: org.id }, { as: viewer })).createWorkspace.id;
    await env(second, 'Sandbox', 'DEV');
    ok(await app.gql(`mutation($o: ID!) { createWorkspace(organizationId: $o, input: { name: "Empty" }) { id } }`, { o: org.id }, { as: viewer }));
    // Another organization of the same owner, with an environment: never listed here.
    const other = await createOrganization(app, viewer);
    await env(other.defaultWorkspaceId, 'Elsewhere', 'DEV');
    const page = ok(await app.gql<Page>(PAGE(''), { s: org.slug }, { as: viewer }));
    for (const w of page.organization.workspaces.nodes) own.set(w.id, ok(await app.gql<{ workspace: Record<string, Listed> }>(OWN, { id: w.id }, { as: viewer })).workspace);
  });

  it('the lists are each workspace’s own, in its order: the lean ones', async () => {
    const page = ok(await app.gql<Page>(PAGE(`environments { id name } all: environments(includeDestroyed: true) { id name } dev: environments(tier: DEV) { name }`), { s: org.slug }, { as: viewer }));
    const nodes = page.organization.workspaces.nodes;
    expect(nodes.map((w) => [w.name, w.environments!.map((e) => e.name), w.all!.map((e) => e.name), w.dev!.map((e) => e.name)])).toEqual([
      ['Default', ['Dev', 'Stage', 'Prod'], ['Dev', 'Stage', 'Gone', 'Prod'], ['Dev']],
      ['Second', ['Sandbox'], ['Sandbox'], ['Sandbox']],
      ['Empty', [], [], []],
    ]);
    for (const w of nodes) expect({ environments: w.environments, all: w.all }).toEqual({ environments: own.get(w.id)!.environments, all: own.get(w.id)!.all });
  });

  it('and the full ones', async () => {
    const page = ok(await app.gql<Page>(PAGE(`environments { id name } full: environments { slug resources { cpu } }`), { s: org.slug }, { as: viewer }));
    for (const w of page.organization.workspaces.nodes) expect({ environments: w.environments, full: w.full }).toEqual({ environments: own.get(w.id)!.environments, full: own.get(w.id)!.full });
    expect(page.organization.workspaces.nodes[0]!.full!.map((e) => e.slug)).toEqual(['dev', 'stage', 'prod']);
  });

  it('asking for them costs no statement, lean or full', async () => {
    const without = await app.gql(PAGE(''), { s: org.slug }, { as: viewer });
    const lean = await app.gql(PAGE('environments { id name } all: environments(includeDestroyed: true) { id }'), { s: org.slug }, { as: viewer });
    const full = await app.gql(PAGE('environments { id name } full: environments { slug resources { cpu ramMb diskGb } }'), { s: org.slug }, { as: viewer });
    expect([lean, full].map((r) => r.headers.get('x-sql-statements'))).toEqual([without.headers.get('x-sql-statements'), without.headers.get('x-sql-statements')]);
  });
});

describe('the workspaces of several organizations bring their environments along, joined in the page’s statement', () => {
  const WS = `mutation($o: ID!, $n: String!, $v: WorkspaceVisibility) { createWorkspace(organizationId: $o, input: { name: $n, visibility: $v }) { id } }`;
  const LIST = (environments: string) => `{ organizations(first: 10) { nodes { name workspaces(first: 10) { nodes { id name ${environments} } } } } }`;
  type Workspaces = Array<{ id: string; name: string } & Record<string, Listed>>;
  type List = { organizations: { nodes: Array<{ id?: string; name: string; workspaces: { nodes: Workspaces } }> } };
  const founder = uniqueEmail('joined');
  // A viewer of both organizations: its pages are narrowed by visibility (a restricted workspace is not theirs).
  const viewer = uniqueEmail('joined-viewer');
  /** Each workspace's lists as the workspace itself reads them (statements of its own), by workspace id. */
  const own = new Map<string, Record<string, Listed>>();
  let names: [string, string];

  beforeAll(async () => {
    const first = await createOrganization(app, founder, { name: 'Joined First' });
    const second = await createOrganization(app, founder, { name: 'Joined Second' });
    names = ['Joined First', 'Joined Second'];
    const env = async (w: string, n: string, t: string) => ok(await app.gql<{ createEnvironment: { id: string } }>(ENV, { w, n, t }, { as: founder })).createEnvironment.id;
    const ws = async (o: string, n: string, v = 'ORGANIZATION') => ok(await app.gql<{ createWorkspace: { id: string } }>(WS, { o, n, v }, { as: founder })).createWorkspace.id;
    await env(first.defaultWorkspaceId, 'Dev', 'DEV');
    const gone = await env(first.defaultWorkspaceId, 'Gone', 'DEV');
    await env(first.defaultWorkspaceId, 'Prod', 'PROD');
    ok(await app.gql(`mutation($id: ID!) { destroyEnvironment(id: $id) { id } }`, { id: gone }, { as: founder }));
    await setFeatureFlag(app, first.id, 'restricted_workspaces', true, founder);
    await env(await ws(first.id, 'Hidden', 'RESTRICTED'), 'Secret', 'PROD');
    await ws(first.id, 'Empty');
    await env(second.defaultWorkspaceId, 'Stage', 'STAGE');
    await env(await ws(second.id, 'Other'), 'Sandbox', 'DEV');
    await addMember(app, first.id, viewer, 'viewer');
    await addMember(app, second.id, viewer, 'viewer');
    // Another tenant's environments: never listed here.
    const stranger = uniqueEmail('joined-stranger');
    const strangers = await createOrganization(app, stranger);
    ok(await app.gql(ENV, { w: strangers.defaultWorkspaceId, n: 'Elsewhere', t: 'DEV' }, { as: stranger }));
    for (const as of [founder, viewer]) {
      for (const o of ok(await app.gql<List>(LIST(''), {}, { as })).organizations.nodes) {
        for (const w of o.workspaces.nodes) own.set(`${as} ${w.id}`, ok(await app.gql<{ workspace: Record<string, Listed> }>(OWN, { id: w.id }, { as })).workspace);
      }
    }
  });

  /** The listed organizations' workspaces as [organization, workspace, environments' names per list]. */
  const listed = (list: List, lists: string[]) =>
    list.organizations.nodes.flatMap((o) => o.workspaces.nodes.map((w) => [o.name, w.name, ...lists.map((l) => w[l]!.map((e) => e.name ?? e.slug))]));

  it('each workspace lists its own, in its order, for the owner and for a viewer (whose pages leave out the restricted workspace)', async () => {
    const ENVIRONMENTS = `environments { id name } all: environments(includeDestroyed: true) { id name } prod: environments(tier: PROD) { name }`;
    const byFounder = ok(await app.gql<List>(LIST(ENVIRONMENTS), {}, { as: founder }));
    expect(byFounder.organizations.nodes.map((o) => o.name)).toEqual(names);
    expect(listed(byFounder, ['environments', 'all', 'prod'])).toEqual([
      ['Joined First', 'Default', ['Dev', 'Prod'], ['Dev', 'Gone', 'Prod'], ['Prod']],
      ['Joined First', 'Hidden', ['Secret'], ['Secret'], ['Secret']],
      ['Joined First', 'Empty', [], [], []],
      ['Joined Second', 'Default', ['Stage'], ['Stage'], []],
      ['Joined Second', 'Other', ['Sandbox'], ['Sandbox'], []],
    ]);
    const byViewer = ok(await app.gql<List>(LIST(ENVIRONMENTS), {}, { as: viewer }));
    expect(listed(byViewer, ['environments', 'all', 'prod'])).toEqual([
      ['Joined First', 'Default', ['Dev', 'Prod'], ['Dev', 'Gone', 'Prod'], ['Prod']],
      ['Joined First', 'Empty', [], [], []],
      ['Joined Second', 'Default', ['Stage'], ['Stage'], []],
      ['Joined Second', 'Other', ['Sandbox'], ['Sandbox'], []],
    ]);
    for (const [as, list] of [[founder, byFounder], [viewer, byViewer]] as const) {
      for (const w of list.organizations.nodes.flatMap((o) => o.workspaces.nodes)) {
        expect({ environments: w.environments, all: w.all }).toEqual({ environments: own.get(`${as} ${w.id}`)!.environments, all: own.get(`${as} ${w.id}`)!.all });
      }
    }
  });

  it('each environment belongs to the workspace and organization it is listed under (their ids come from the page’s row)', async () => {
    const ENVIRONMENTS = `environments { id workspace { id } organization { id } } full: environments { slug workspace { id } organization { id } }`;
    for (const as of [founder, viewer]) {
      const list = ok(await app.gql<List>(LIST(ENVIRONMENTS).replace('nodes { name', 'nodes { id name'), {}, { as }));
      const owners = list.organizations.nodes.flatMap((o) =>
        o.workspaces.nodes.flatMap((w) => [...w.environments!, ...w.full!].map((e) => [e.organization!.id, e.workspace!.id, o.id, w.id])),
      );
      expect(owners.length).toBe(as === founder ? 10 : 8);
      for (const [organization, workspace, listedOrganization, listedWorkspace] of owners) expect([organization, workspace]).toEqual([listedOrganization, listedWorkspace]);
    }
  });

  it('and the full ones, with the workspaces’ whole rows too (a field outside their list columns)', async () => {
    for (const [as, workspaceFields] of [[founder, ''], [viewer, ''], [founder, 'description'], [viewer, 'description']] as const) {
      const list = ok(await app.gql<List>(LIST(`${workspaceFields} environments { id name } full: environments { slug resources { cpu } }`), {}, { as }));
      const workspaces = list.organizations.nodes.flatMap((o) => o.workspaces.nodes);
      expect(workspaces.length).toBe(as === founder ? 5 : 4);
      for (const w of workspaces) expect({ environments: w.environments, full: w.full }).toEqual({ environments: own.get(`${as} ${w.id}`)!.environments, full: own.get(`${as} ${w.id}`)!.full });
    }
  });

  it('after a cursor too: the pages that follow it bring their own', async () => {
    const CURSOR = `{ organizations(first: 10) { nodes { workspaces(first: 1) { pageInfo { endCursor } } } } }`;
    const after = ok(await app.gql<{ organizations: { nodes: Array<{ workspaces: { pageInfo: { endCursor: string } } }> } }>(CURSOR, {}, { as: founder })).organizations.nodes[0]!
      .workspaces.pageInfo.endCursor;
    const AFTER = `query($after: String) { organizations(first: 10) { nodes { name workspaces(first: 2, after: $after) { nodes { id name environments { id name } all: environments(includeDestroyed: true) { id name } } } } } }`;
    const list = ok(await app.gql<List>(AFTER, { after }, { as: founder }));
    // The cursor is the first organization's Default: its next two, then the second's first two (all created after it).
    expect(listed(list, ['environments'])).toEqual([
      ['Joined First', 'Hidden', ['Secret']],
      ['Joined First', 'Empty', []],
      ['Joined Second', 'Default', ['Stage']],
      ['Joined Second', 'Other', ['Sandbox']],
    ]);
    for (const w of list.organizations.nodes.flatMap((o) => o.workspaces.nodes)) {
      expect({ environments: w.environments, all: w.all }).toEqual({ environments: own.get(`${founder} ${w.id}`)!.environments, all: own.get(`${founder} ${w.id}`)!.all });
    }
  });

  it('asking for them costs no statement, lean or full, for the owner and for a viewer', async () => {
    for (const as of [founder, viewer]) {
      const without = await app.gql(LIST(''), {}, { as });
      const lean = await app.gql(LIST('environments { id name } all: environments(includeDestroyed: true) { id }'), {}, { as });
      const full = await app.gql(LIST('environments { id name } full: environments { slug resources { cpu ramMb diskGb } }'), {}, { as });
      expect([lean, full].map((r) => r.headers.get('x-sql-statements'))).toEqual([without.headers.get('x-sql-statements'), without.headers.get('x-sql-statements')]);
      const wholeWithout = await app.gql(LIST('description'), {}, { as });
      const whole = await app.gql(LIST('description environments { id name } full: environments { slug }'), {}, { as });
      expect(whole.headers.get('x-sql-statements')).toBe(wholeWithout.headers.get('x-sql-statements'));
    }
  });
});

describe('a query’s COMMIT leaves with the connection’s next statement (PostgreSQL)', () => {
  const describeOnPostgres = usesRealPostgres() ? describe : describe.skip;
  describeOnPostgres('DB_COMMIT_DEFER_MS=1000', () => {
    let deferring: TestApp;
    let direct: Client;
    const who = uniqueEmail('defer');
    let org: Awaited<ReturnType<typeof createOrganization>>;
    /** The deferring app's own connections to PostgreSQL (not another app's pool ending an idle one). */
    const ownSockets = () =>
      new Set(
        ((deferring.db.dataSource.driver as unknown as { master: { _clients: Array<{ connection: { stream: unknown } }> } }).master._clients ?? []).map((c) => c.connection.stream),
      );
    const writes = (fn: () => Promise<unknown>) => {
      const own = ownSockets();
      return socketWritesDuring(fn, (socket) => own.has(socket));
    };
    const idleInTransaction = async () =>
      Number(
        (
          await direct.query<{ n: string }>(
            `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tenant-service' AND state = 'idle in transaction'`,
          )
        ).rows[0]!.n,
      );
    const rename = async (as: string, name: string) => {
      const token = await deferring.token(as, { name });
      return deferring.gql<{ me: { user: { name: string } } }>(`{ me { user { name } } }`, {}, { token });
    };

    beforeAll(async () => {
      deferring = await startTestApp({ env: { RATE_LIMITS: 'false', DB_COMMIT_DEFER_MS: '1000' } });
      direct = new Client({ connectionString: deferring.databaseUrl });
      await direct.connect();
      org = await createOrganization(deferring, who);
    });
    afterAll(async () => {
      await direct?.end();
      await deferring?.close();
    });

    it('a query right after another costs one write: the first’s COMMIT, BEGIN with the session and the read leave together', async () => {
      ok(await deferring.gql(BY_SLUG, { s: org.slug }, { as: who }));
      const { answer, writes: count } = await readBySlug(deferring, org.slug, who, writes);
      expect(answer).toEqual({ organization: { id: org.id, name: expect.any(String) } });
      expect(count).toBe(1);
    });

    it('left alone, the deferred COMMIT leaves on its own: no transaction stays open', async () => {
      ok(await deferring.gql(BY_SLUG, { s: org.slug }, { as: who }));
      expect(await idleInTransaction()).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(await idleInTransaction()).toBe(0);
    });

    it('a mutation is committed before it answers: another connection sees the change at once', async () => {
      const name = `Renamed ${Date.now()}`;
      ok(await deferring.gql(`mutation($id: ID!, $n: String!) { updateOrganization(id: $id, input: { name: $n }) { name } }`, { id: org.id, n: name }, { as: who }));
      expect((await direct.query<{ name: string }>(`SELECT name FROM organizations WHERE id = $1`, [org.id])).rows[0]!.name).toBe(name);
    });

    it('nor a query whose opening provisioned its user: the user exists for every connection when it answers', async () => {
      const newcomer = uniqueEmail('newcomer');
      ok(await deferring.gql(`{ me { user { id } } }`, {}, { as: newcomer }));
      expect((await direct.query<{ n: string }>(`SELECT count(*) AS n FROM users WHERE email = $1`, [newcomer])).rows[0]!.n).toBe('1');
    });

    it('nor a query whose opening refreshed the user’s name from the token: every connection reads the new name when it answers', async () => {
      const person = uniqueEmail('renamed');
      expect(ok(await rename(person, 'Alice')).me.user.name).toBe('Alice');
      expect(ok(await rename(person, 'Bob')).me.user.name).toBe('Bob');
      expect((await direct.query<{ name: string }>(`SELECT name FROM users WHERE email = $1`, [person])).rows[0]!.name).toBe('Bob');
      expect(await idleInTransaction()).toBe(0);
    });
  });
});
