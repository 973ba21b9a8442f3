import { codes, ok, startTestApp, type TestApp } from '../helpers/app';
import { createOrganization, uniqueEmail } from '../helpers/factories';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

const ENTITIES = `query($r: [_Any!]!) { _entities(representations: $r) {
  __typename
  ... on Organization { id slug memberCount }
  ... on Workspace { id slug organization { id } }
  ... on User { id email }
} }`;

describe('Apollo Federation subgraph', () => {
  it('serves its SDL without a token, with @key on the four entities', async () => {
    const sdl = ok(await app.gql(`{ _service { sdl } }`))._service.sdl as string;
    for (const type of ['Organization', 'Workspace', 'Environment', 'User']) {
      expect(sdl).toMatch(new RegExp(`type ${type}\\s+@key\\(fields: "id"\\)`));
    }
  });

  it('resolves references the principal may see, in order, batched, and NOT_FOUND for the rest', async () => {
    const owner = uniqueEmail('fed');
    const stranger = uniqueEmail('stranger');
    const mine = await createOrganization(app, owner);
    const other = await createOrganization(app, stranger);
    const me = ok(await app.gql(`{ me { user { id } } }`, {}, { as: owner })).me.user.id;
    const result = await app.gql(
      ENTITIES,
      {
        r: [
          { __typename: 'Organization', id: mine.id },
          { __typename: 'Organization', id: other.id },
          { __typename: 'Workspace', id: mine.defaultWorkspaceId },
          { __typename: 'Workspace', id: other.defaultWorkspaceId },
          { __typename: 'User', id: me },
          { __typename: 'Organization', id: 'not-a-uuid' },
        ],
      },
      { as: owner },
    );
    expect(result.data!._entities).toEqual([
      { __typename: 'Organization', id: mine.id, slug: mine.slug, memberCount: 1 },
      null,
      { __typename: 'Workspace', id: mine.defaultWorkspaceId, slug: 'default', organization: { id: mine.id } },
      null,
      { __typename: 'User', id: me, email: owner },
      null,
    ]);
    expect(codes(result)).toEqual(['NOT_FOUND', 'NOT_FOUND', 'NOT_FOUND']);
    // Errors arrive in completion order: compare them by path.
    const errors = [...result.errors!].sort((x, y) => Number(x.path![1]) - Number(y.path![1]));
    expect(errors.map((e) => e.path)).toEqual([['_entities', 1], ['_entities', 3], ['_entities', 5]]);
    expect(errors.map((e) => e.message)).toEqual(['Organization not found', 'Workspace not found', 'Organization not found']);
  });

  it('refuses _entities without a token', async () => {
    const result = await app.gql(ENTITIES, { r: [{ __typename: 'User', id: '00000000-0000-0000-0000-000000000000' }] });
    expect(codes(result)).toEqual(['UNAUTHENTICATED']);
    expect(result.status).toBe(401);
  });
});
