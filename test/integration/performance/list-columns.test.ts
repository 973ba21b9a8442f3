import { ORGANIZATION_COLUMNS } from '../../../src/modules/organization/organization.rows';
import { Organization } from '../../../src/modules/organization/organization.entity';
import { ok, startTestApp, type TestApp } from '../../helpers/app';
import { addMember, createOrganization, setFeatureFlag, uniqueEmail, type CreatedOrganization } from '../../helpers/factories';

/**
 * Lists of workspaces and environments read only their lean columns when the selection asks for
 * nothing else (src/database/projection.ts). Whatever the selection — fields, fragments, inline
 * fragments, aliases mixing lean and full selections in one request — every field must come back
 * exactly as a full read gives it.
 */
let app: TestApp;
const owner = uniqueEmail('cols-owner');
const member = uniqueEmail('cols-member');
let org: CreatedOrganization;
let restricted: string;

const FULL_ENV = `id name slug tier deploymentHost executionBackend isActive createdAt updatedAt destroyedAt hasCloudCredentials resources { cpu ramMb diskGb } workspace { id } organization { id }`;
const FULL_WS = `id name slug description isDefault visibility createdAt updatedAt viewerPermissions organization { id }`;

beforeAll(async () => {
  app = await startTestApp();
  org = await createOrganization(app, owner);
  await setFeatureFlag(app, org.id, 'restricted_workspaces', true, owner);
  restricted = ok(
    await app.gql(`mutation($o: ID!) { createWorkspace(organizationId: $o, input: { name: "Hidden", description: "not for members", visibility: RESTRICTED }) { id } }`, { o: org.id }, { as: owner }),
  ).createWorkspace.id;
  for (const [ws, name, tier] of [
    [org.defaultWorkspaceId, 'Dev', 'DEV'],
    [org.defaultWorkspaceId, 'Prod', 'PROD'],
    [restricted, 'Stage', 'STAGE'],
  ] as const) {
    ok(
      await app.gql(
        `mutation($w: ID!, $n: String!, $t: EnvironmentTier!) { createEnvironment(workspaceId: $w, input: { name: $n, tier: $t, resources: { cpu: 1.5, ramMb: 1024, diskGb: 20 }, cloudCredentials: { k: "v" } }) { id } }`,
        { w: ws, n: name, t: tier },
        { as: owner },
      ),
    );
  }
  const dev = ok(await app.gql(`query($w: ID!) { workspace(id: $w) { environment(slug: "dev") { id } } }`, { w: org.defaultWorkspaceId }, { as: owner })).workspace.environment.id;
  ok(await app.gql(`mutation($id: ID!) { destroyEnvironment(id: $id) { id } }`, { id: dev }, { as: owner }));
  await addMember(app, org.id, member, 'member');
}, 60_000);
afterAll(async () => {
  await app?.close();
});

const pick = (o: Record<string, unknown>, keys: string[]) => Object.fromEntries(keys.map((k) => [k, o[k]]));

async function fullEnvironments(): Promise<Array<Record<string, any>>> {
  const data = ok(await app.gql(`query($w: ID!) { workspace(id: $w) { environments(includeDestroyed: true) { ${FULL_ENV} } } }`, { w: org.defaultWorkspaceId }, { as: owner }));
  return data.workspace.environments;
}

describe('environments: lean and full reads give the same fields', () => {
  it('a lean selection returns exactly the full read’s values, destroyed ones and filters included', async () => {
    const full = await fullEnvironments();
    expect(full.map((e) => [e.slug, e.isActive, e.destroyedAt === null])).toEqual([
      ['dev', false, false],
      ['prod', true, true],
    ]);
    expect(full.every((e) => e.hasCloudCredentials === true && e.resources.cpu === 1.5 && e.workspace.id === org.defaultWorkspaceId)).toBe(true);
    const lean = ok(
      await app.gql(
        `query($w: ID!) { workspace(id: $w) { all: environments(includeDestroyed: true) { __typename id name slug tier deploymentHost isActive workspace { id } organization { id } }
           active: environments { id slug } prod: environments(tier: PROD) { id } } }`,
        { w: org.defaultWorkspaceId },
        { as: owner },
      ),
    ).workspace;
    const keys = ['id', 'name', 'slug', 'tier', 'deploymentHost', 'isActive', 'workspace', 'organization'];
    expect(lean.all).toEqual(full.map((e) => ({ __typename: 'Environment', ...pick(e, keys) })));
    expect(lean.active).toEqual([{ id: full[1]!.id, slug: 'prod' }]);
    expect(lean.prod).toEqual([{ id: full[1]!.id }]);
  });

  it('fields beyond the lean columns, asked through a fragment, an inline fragment or next to a lean alias, come back whole', async () => {
    const full = await fullEnvironments();
    const data = ok(
      await app.gql(
        `query($w: ID!) { workspace(id: $w) {
           lean: environments(includeDestroyed: true) { id name }
           viaFragment: environments(includeDestroyed: true) { id ...Dates }
           viaInline: environments(includeDestroyed: true) { id ... on Environment { destroyedAt hasCloudCredentials resources { cpu ramMb diskGb } } }
           nested: environments(includeDestroyed: true) { ...Outer } } }
         fragment Dates on Environment { createdAt updatedAt }
         fragment Outer on Environment { ...Inner }
         fragment Inner on Environment { executionBackend createdAt }`,
        { w: org.defaultWorkspaceId },
        { as: owner },
      ),
    ).workspace;
    expect(data.lean).toEqual(full.map((e) => pick(e, ['id', 'name'])));
    expect(data.viaFragment).toEqual(full.map((e) => pick(e, ['id', 'createdAt', 'updatedAt'])));
    expect(data.viaInline).toEqual(full.map((e) => pick(e, ['id', 'destroyedAt', 'hasCloudCredentials', 'resources'])));
    expect(data.nested).toEqual(full.map((e) => pick(e, ['executionBackend', 'createdAt'])));
    expect(data.viaFragment.every((e: { createdAt: string }) => /^\d{4}-\d\d-\d\dT/.test(e.createdAt))).toBe(true);
  });
});

describe('workspaces: lean and full pages give the same fields', () => {
  const PAGE = (selection: string) => `query($o: ID!) { organization(id: $o) { workspaces(first: 10) { ${selection} } } }`;

  it('a lean page returns the full page’s values, its cursors and the environments under it', async () => {
    const full = ok(await app.gql(PAGE(`nodes { ${FULL_WS} } edges { cursor } pageInfo { endCursor hasNextPage }`), { o: org.id }, { as: owner })).organization.workspaces;
    expect(full.nodes.map((w: { name: string }) => w.name)).toEqual(['Default', 'Hidden']);
    const lean = ok(
      await app.gql(
        PAGE(`nodes { id name slug isDefault visibility createdAt viewerPermissions organization { id } environments { id name } } edges { cursor node { id } } pageInfo { endCursor hasNextPage } totalCount`),
        { o: org.id },
        { as: owner },
      ),
    ).organization.workspaces;
    expect(lean.nodes.map((w: Record<string, unknown>) => pick(w, ['id', 'name', 'slug', 'isDefault', 'visibility', 'createdAt', 'viewerPermissions', 'organization']))).toEqual(
      full.nodes.map((w: Record<string, unknown>) => pick(w, ['id', 'name', 'slug', 'isDefault', 'visibility', 'createdAt', 'viewerPermissions', 'organization'])),
    );
    expect(lean.edges.map((e: { cursor: string }) => e.cursor)).toEqual(full.edges.map((e: { cursor: string }) => e.cursor));
    expect(lean.pageInfo).toEqual(full.pageInfo);
    expect(lean.totalCount).toBe(2);
    expect(lean.nodes.map((w: { environments: Array<{ name: string }> }) => w.environments.map((e) => e.name))).toEqual([['Prod'], ['Stage']]);
  });

  it('a page asking for more than the lean columns (through edges or a fragment) reads them; then workspace(id) in the same request is whole', async () => {
    const data = ok(
      await app.gql(
        `query($o: ID!, $w: ID!) { organization(id: $o) { lean: workspaces { nodes { id } } rich: workspaces { edges { node { ...W } } } }
           workspace(id: $w) { id description updatedAt } }
         fragment W on Workspace { description updatedAt }`,
        { o: org.id, w: restricted },
        { as: owner },
      ),
    );
    expect(data.organization.rich.edges.map((e: { node: { description: string | null } }) => e.node.description)).toEqual([null, 'not for members']);
    expect(data.organization.rich.edges.every((e: { node: { updatedAt: string } }) => /^\d{4}-/.test(e.node.updatedAt))).toBe(true);
    expect(data.workspace.description).toBe('not for members');
    expect(data.workspace.updatedAt).toMatch(/^\d{4}-/);
  });

  it('a workspace read whole after its lean page, in the same request, is not the lean row', async () => {
    const data = ok(
      await app.gql(
        `query($o: ID!) { organization(id: $o) { workspaces { nodes { id name environments { id workspace { id description createdAt updatedAt } } } } } }`,
        { o: org.id },
        { as: owner },
      ),
    );
    const nodes = data.organization.workspaces.nodes;
    expect(nodes.map((w: { name: string }) => w.name)).toEqual(['Default', 'Hidden']);
    expect(nodes[1].environments).toEqual([
      { id: expect.any(String), workspace: { id: restricted, description: 'not for members', createdAt: expect.stringMatching(/^\d{4}-/), updatedAt: expect.stringMatching(/^\d{4}-/) } },
    ]);
  });

  it('a member sees through a lean page what a full page shows them: the restricted workspace stays out', async () => {
    const lean = ok(await app.gql(PAGE(`nodes { id name environments { name } } totalCount`), { o: org.id }, { as: member })).organization.workspaces;
    const full = ok(await app.gql(PAGE(`nodes { id name description environments { name createdAt } } totalCount`), { o: org.id }, { as: member })).organization.workspaces;
    expect(lean.nodes.map((w: { name: string }) => w.name)).toEqual(['Default']);
    expect(full.nodes.map((w: { name: string }) => w.name)).toEqual(['Default']);
    expect(lean.nodes[0].environments).toEqual([{ name: 'Prod' }]);
    expect(lean.totalCount).toBe(1);
  });
});

describe('organizations: lean and full lists give the same fields', () => {
  const FULL_ORG = `id name slug description website status createdAt updatedAt isActive memberCount workspaceCount viewerPermissions owner { email }`;
  const LEAN_ORG = `id name slug status createdAt memberCount workspaceCount viewerPermissions owner { email } workspaces(first: 5) { nodes { name } }`;
  const LIST = (selection: string) => `{ organizations(first: 50) { ${selection} } me { organizations(first: 50) { nodes { id name } } } }`;
  const mine = <T extends { id: string }>(nodes: T[]): T[] => nodes.filter((o) => o.id === org.id || o.id === second.id);
  let second: CreatedOrganization;
  beforeAll(async () => {
    second = await createOrganization(app, owner, { name: 'Second Org', description: 'the second', website: 'https://second.example.com' });
  });

  it('ORGANIZATION_COLUMNS, what a whole organization is read with, names every column of the entity, each once', () => {
    const named = ORGANIZATION_COLUMNS.split(',').map((c) => c.trim());
    expect(named.length).toBe(new Set(named).size);
    expect(named.sort()).toEqual(app.db.dataSource.getMetadata(Organization).columns.map((c) => c.databaseName).sort());
  });

  it('a lean list returns the full list’s values, cursors and nested lists, for the owner and for a member', async () => {
    for (const as of [owner, member]) {
      const full = ok(await app.gql(LIST(`nodes { ${FULL_ORG} } edges { cursor } pageInfo { hasNextPage }`), {}, { as }));
      const lean = ok(await app.gql(LIST(`nodes { ${LEAN_ORG} } edges { cursor } pageInfo { hasNextPage }`), {}, { as }));
      const keys = ['id', 'name', 'slug', 'status', 'createdAt', 'memberCount', 'workspaceCount', 'viewerPermissions', 'owner'];
      expect(mine(lean.organizations.nodes).map((o: Record<string, unknown>) => pick(o, keys))).toEqual(mine(full.organizations.nodes).map((o: Record<string, unknown>) => pick(o, keys)));
      expect(lean.organizations.edges.map((e: { cursor: string }) => e.cursor)).toEqual(full.organizations.edges.map((e: { cursor: string }) => e.cursor));
      expect(lean.me.organizations.nodes.map((o: { id: string }) => o.id)).toEqual(full.organizations.nodes.map((o: { id: string }) => o.id));
      expect(mine<{ id: string; workspaces: { nodes: Array<{ name: string }> } }>(lean.organizations.nodes).map((o) => o.workspaces.nodes.map((w) => w.name)[0])).toEqual(
        as === owner ? ['Default', 'Default'] : ['Default'],
      );
    }
  });

  it('a list asking for more than the lean columns (a fragment, a field of another module) reads them; then organization(id) in the same request is whole', async () => {
    const data = ok(
      await app.gql(
        `query($o: ID!) { lean: organizations(first: 50) { nodes { id name } } rich: organizations(first: 50) { edges { node { id ...O } } }
           organization(id: $o) { id description website settings { timezone } } }
         fragment O on Organization { description website isActive }`,
        { o: second.id },
        { as: owner },
      ),
    );
    const rich = data.rich.edges.map((e: { node: Record<string, unknown> }) => e.node).find((o: { id: string }) => o.id === second.id);
    expect(rich).toEqual({ id: second.id, description: 'the second', website: 'https://second.example.com', isActive: true });
    expect(data.organization).toEqual({ id: second.id, description: 'the second', website: 'https://second.example.com', settings: { timezone: expect.any(String) } });
  });

  it('an organization read whole after its lean list, in the same request, is not the lean row', async () => {
    const data = ok(
      await app.gql(
        `query($o: ID!) { organizations(first: 50) { nodes { id name } } organization(id: $o) { id name description website updatedAt } }`,
        { o: second.id },
        { as: owner },
      ),
    );
    expect(data.organization).toEqual({ id: second.id, name: 'Second Org', description: 'the second', website: 'https://second.example.com', updatedAt: expect.stringMatching(/^\d{4}-/) });
  });
});

describe('environments: a packed list gives what a read by id gives (src/database/hydrate.ts, PackedRows)', () => {
  it('every field, for a name JSON and array syntax must escape, from the list loader and from a page that brings them along', async () => {
    // Quotes, backslashes, commas, braces, a tab and characters beyond ASCII: what the text array and its JSON carry escaped.
    const name = 'Q "uote", back\\slash {x}\tsüß 日本 ✓';
    const created = ok(
      await app.gql(
        `mutation($w: ID!, $n: String!) { createEnvironment(workspaceId: $w, input: { name: $n, tier: STAGE, resources: { cpu: 0.125, ramMb: 3072, diskGb: 7 } }) { id } }`,
        { w: restricted, n: name },
        { as: owner },
      ),
    ).createEnvironment.id as string;
    const byId = ok(await app.gql(`query($id: ID!) { environment(id: $id) { ${FULL_ENV} } }`, { id: created }, { as: owner })).environment;
    expect([byId.name, byId.hasCloudCredentials, byId.executionBackend, byId.destroyedAt, byId.resources]).toEqual([name, false, null, null, { cpu: 0.125, ramMb: 3072, diskGb: 7 }]);
    // The list loader (a workspace's environments) and the look-ahead of one organization's page of workspaces.
    const listed = ok(await app.gql(`query($w: ID!) { workspace(id: $w) { environments { ${FULL_ENV} } } }`, { w: restricted }, { as: owner })).workspace.environments;
    const along = ok(await app.gql(`query($o: ID!) { organization(id: $o) { workspaces(first: 10) { nodes { id environments { ${FULL_ENV} } } } } }`, { o: org.id }, { as: owner }))
      .organization.workspaces.nodes.find((w: { id: string }) => w.id === restricted).environments;
    for (const list of [listed, along]) expect(list.find((e: { id: string }) => e.id === created)).toEqual(byId);
  });
});
