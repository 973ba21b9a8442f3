import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { createOrganization, uniqueEmail } from '../../helpers/factories';

/**
 * Requests whose answers must not depend on the engine that executes them. src/graphql/executor.ts
 * compiles a document with graphql-jit at its second request; each of these once answered
 * differently from graphql-js there, so each document is sent at least twice.
 */
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

type Named = { name: string };

describe('execution answers as graphql-js does, at the first request and after', () => {
  it('a fragment skipped in one place is still selected where it is spread without @skip, in this operation and in another of the same document', async () => {
    const owner = uniqueEmail('frag');
    await createOrganization(app, owner);
    const query = `query($s: Boolean!) { me { a: user { ...U @skip(if: $s) id } b: user { ...U } } } fragment U on User { email }`;
    for (let i = 0; i < 3; i++) {
      const data = ok(await app.gql<{ me: { a: unknown; b: unknown } }>(query, { s: true }, { as: owner }));
      expect(data.me).toEqual({ a: { id: expect.any(String) }, b: { email: owner } });
    }
    const twoOperations = `query A { me { user { ...U @skip(if: true) id } } } query B { me { user { ...U } } } fragment U on User { email }`;
    const send = async (operationName: string) => ok(await app.gql<{ me: { user: unknown } }>(twoOperations, {}, { as: owner, operationName })).me.user;
    for (let i = 0; i < 3; i++) {
      expect(await send('A')).toEqual({ id: expect.any(String) });
      expect(await send('B')).toEqual({ email: owner });
    }
  });

  it('PATCH: a nullable variable that is not provided leaves its input field alone, not null', async () => {
    const owner = uniqueEmail('patch');
    const org = await createOrganization(app, owner, { description: 'before', website: 'https://keep.example' });
    const patch = `mutation($id: ID!, $d: String, $w: String) { updateOrganization(id: $id, input: { description: $d, website: $w }) { description website } }`;
    for (const d of ['first', 'second', 'third']) {
      const data = ok(await app.gql<{ updateOrganization: unknown }>(patch, { id: org.id, d }, { as: owner }));
      expect(data.updateOrganization).toEqual({ description: d, website: 'https://keep.example' });
    }
  });

  it('a mutation field that fails (non-null) stops the fields after it: nothing after it is written', async () => {
    const owner = uniqueEmail('serial');
    const org = await createOrganization(app, owner);
    const twice = `mutation($org: ID!, $b: String!) { a: createWorkspace(organizationId: $org, input: { name: "" }) { id } b: createWorkspace(organizationId: $org, input: { name: $b }) { id } }`;
    for (const b of ['second', 'third', 'fourth']) {
      const result = await app.gql(twice, { org: org.id, b }, { as: owner });
      expect(result.data).toBeNull();
      expect(codes(result)).toEqual(['BAD_USER_INPUT']);
    }
    const after = ok(await app.gql<{ organization: { workspaces: { nodes: Named[] } } }>(`query($id: ID!) { organization(id: $id) { workspaces { nodes { name } } } }`, { id: org.id }, { as: owner }));
    expect(after.organization.workspaces.nodes.map((w) => w.name)).toEqual(['Default']);
  });

  it("a variable's default value of a custom scalar reaches the resolver parsed (DateTime)", async () => {
    const owner = uniqueEmail('since');
    const org = await createOrganization(app, owner);
    const query = `query($org: ID!, $since: DateTime = "2000-01-01T00:00:00Z") { auditEvents(organizationId: $org, filter: { since: $since }) { nodes { action } } }`;
    for (let i = 0; i < 3; i++) {
      const result = await app.gql<{ auditEvents: { nodes: Array<{ action: string }> } }>(query, { org: org.id }, { as: owner });
      expect(result.errors).toBeUndefined();
      expect(result.data!.auditEvents.nodes.map((n) => n.action)).toContain('organization.created');
    }
  });
});
