import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { addMember, createOrganization, uniqueEmail } from '../../helpers/factories';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

describe('HTTP surface', () => {
  it('answers /healthz and /readyz, and every response carries a request id', async () => {
    const health = await fetch(`${app.url}/healthz`, { headers: { 'x-request-id': 'probe-1' } });
    expect(await health.json()).toEqual({ status: 'ok' });
    expect(health.headers.get('x-request-id')).toBe('probe-1');
    const refused = await app.gql(`{ me { user { id } } }`, {}, { token: 'not-a-jwt' });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const ready = await fetch(`${app.url}/readyz`);
    expect(ready.status).toBe(200);
  });

  it('serves queries over GET but never mutations', async () => {
    const token = await app.token(uniqueEmail('get'));
    const query = encodeURIComponent('{ permissionCatalog { code } }');
    const res = await fetch(`${app.url}/graphql?query=${query}`, { headers: { authorization: `Bearer ${token}`, 'apollo-require-preflight': 'true' } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { data: { permissionCatalog: Array<{ code: string }> } };
    expect(body.data.permissionCatalog).toHaveLength(27);
    const mutation = encodeURIComponent('mutation { createOrganization(input: { name: "Via GET" }) { id } }');
    const refused = await fetch(`${app.url}/graphql?query=${mutation}`, { headers: { authorization: `Bearer ${token}`, 'apollo-require-preflight': 'true' } });
    expect(refused.status).toBe(405);
  });

  it('blocks a simple cross-site GET without a preflight header (CSRF prevention)', async () => {
    const res = await fetch(`${app.url}/graphql?query=${encodeURIComponent('{ __typename }')}`);
    expect(res.status).toBe(400);
  });

  it('refuses a body over 1 MiB', async () => {
    const res = await fetch(`${app.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ __typename }`, variables: { pad: 'x'.repeat(1024 * 1024 + 10) } }),
    });
    expect(res.status).toBe(413);
  });

  it('refreshes the user from the claims of each token (just-in-time provisioning)', async () => {
    const email = uniqueEmail('jit');
    const first = ok(await app.gql(`{ me { user { id name } } }`, {}, { token: await app.token(email, { name: 'First Name' }) }));
    const second = ok(await app.gql(`{ me { user { id name } } }`, {}, { token: await app.token(email, { name: 'Second Name' }) }));
    expect(second.me.user).toEqual({ id: first.me.user.id, name: 'Second Name' });
  });

  it('reads membership from the database on every request: a removed member is refused at once', async () => {
    const owner = uniqueEmail('owner');
    const member = uniqueEmail('member');
    const org = await createOrganization(app, owner);
    await addMember(app, org.id, member, 'member');
    expect(ok(await app.gql(`query($id: ID!) { organization(id: $id) { id } }`, { id: org.id }, { as: member })).organization.id).toBe(org.id);
    await app.db.withConnection(async (runner) => {
      await runner.query(`DELETE FROM memberships WHERE organization_id = $1 AND user_id = (SELECT id FROM users WHERE email = $2)`, [org.id, member]);
    });
    const after = await app.gql(`query($id: ID!) { organization(id: $id) { id } }`, { id: org.id }, { as: member });
    expect(codes(after)).toEqual(['NOT_FOUND']);
  });

  it('filters members by role and by name or email', async () => {
    const owner = uniqueEmail('owner');
    const org = await createOrganization(app, owner);
    const alice = uniqueEmail('alice');
    await addMember(app, org.id, alice, 'admin');
    await addMember(app, org.id, uniqueEmail('bob'), 'viewer');
    await addMember(app, org.id, uniqueEmail('carol'), 'viewer');
    const q = `query($id: ID!, $role: String, $search: String) { organization(id: $id) { members(roleKey: $role, search: $search) {
      totalCount nodes { role { key } user { email } } } } }`;
    const viewers = ok(await app.gql(q, { id: org.id, role: 'viewer' }, { as: owner })).organization.members;
    expect(viewers.totalCount).toBe(2);
    expect(viewers.nodes.every((m: any) => m.role.key === 'viewer')).toBe(true);
    const found = ok(await app.gql(q, { id: org.id, search: 'ALICE' }, { as: owner })).organization.members;
    expect(found).toEqual({ totalCount: 1, nodes: [{ role: { key: 'admin' }, user: { email: alice } }] });
    const none = ok(await app.gql(q, { id: org.id, search: '%' }, { as: owner })).organization.members;
    expect(none.totalCount).toBe(0);
  });

  it('refuses a crafted cursor as BAD_USER_INPUT without breaking the rest of the request', async () => {
    const owner = uniqueEmail('cursor');
    const org = await createOrganization(app, owner);
    const crafted = [
      Buffer.from(JSON.stringify(['not-a-date', 'x'])).toString('base64url'),
      Buffer.from(JSON.stringify(['2026-01-01T00:00:00.000Z', 'not-a-uuid'])).toString('base64url'),
      // JavaScript rolls these over; PostgreSQL refuses them.
      Buffer.from(JSON.stringify(['2024-02-30T00:00:00.000Z', '00000000-0000-0000-0000-000000000000'])).toString('base64url'),
      Buffer.from(JSON.stringify(['0000-01-01T00:00:00.000Z', '00000000-0000-0000-0000-000000000000'])).toString('base64url'),
      'garbage',
    ];
    for (const after of crafted) {
      // Nullable connections next to `me`: the request's transaction must stay usable.
      const nested = await app.gql(
        `query($after: String, $id: ID!) { organization(id: $id) { members(after: $after) { totalCount } auditEvents(after: $after) { edges { cursor } } } me { user { email } } }`,
        { after, id: org.id },
        { as: owner },
      );
      expect(codes(nested)).toEqual(['BAD_USER_INPUT', 'BAD_USER_INPUT']);
      expect(nested.errors!.map((e) => e.extensions?.field)).toEqual(['after', 'after']);
      expect(nested.data!.me).toEqual({ user: { email: owner } });
      // Non-null connections: the error is the same.
      for (const query of [
        `query($after: String) { organizations(after: $after) { totalCount } }`,
        `query($after: String, $id: ID!) { organization(id: $id) { workspaces(after: $after) { totalCount } } }`,
      ]) {
        const result = await app.gql(query, { after, id: org.id }, { as: owner });
        expect(codes(result)).toEqual(['BAD_USER_INPUT']);
        expect(result.errors![0]!.extensions?.field).toBe('after');
      }
    }
  });

  it('refuses NUL characters in any input with BAD_USER_INPUT before they reach the database', async () => {
    const owner = uniqueEmail('nul');
    const org = await createOrganization(app, owner);
    const result = await app.gql(`query($s: String!) { organization(slug: $s) { id } }`, { s: `${org.slug}\u0000` }, { as: owner });
    expect(result.status).toBe(400);
    expect(codes(result)).toEqual(['BAD_USER_INPUT']);
  });

  it('strips control characters from token claims rather than failing every request of that user', async () => {
    const email = uniqueEmail('ctl');
    const me = ok(await app.gql(`{ me { user { name email } } }`, {}, { token: await app.token(email, { name: 'Ada\u0000 Love\u0007lace' }) }));
    expect(me.me.user).toEqual({ name: 'Ada Lovelace', email });
  });

  it('answers /readyz with 503, and operations with a masked INTERNAL_SERVER_ERROR (not FORBIDDEN), once the database is gone', async () => {
    const other = await startTestApp();
    try {
      const owner = uniqueEmail('outage');
      const org = await createOrganization(other, owner);
      await other.db.close();
      const res = await fetch(`${other.url}/readyz`);
      expect(res.status).toBe(503);
      // Queries (their rules included) and mutations alike: 503, never FORBIDDEN or NOT_FOUND.
      for (const [query, variables] of [
        [`mutation($id: ID!) { updateOrganization(id: $id, input: { name: "X" }) { id } }`, { id: org.id }],
        [`query($id: ID!) { organization(id: $id) { id name } }`, { id: org.id }],
        [`{ me { user { id } } }`, {}],
      ] as const) {
        const result = await other.gql(query, variables, { as: owner });
        expect(result.status).toBe(503);
        expect(codes(result)).toEqual(['INTERNAL_SERVER_ERROR']);
        expect(result.errors![0]!.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR', reason: 'DATABASE_UNAVAILABLE', requestId: result.headers.get('x-request-id') });
      }
    } finally {
      await other.close();
    }
  });
});
