import { ok, startTestApp, type TestApp } from '../../helpers/app';
import { addMember, createOrganization, setFeatureFlag, uniqueEmail } from '../../helpers/factories';
import { readAll } from '../../helpers/db';

/**
 * Pages of workspaces of several organizations at once (a nested list: one statement for all of
 * them, a lateral index scan per organization): each organization's page is exactly its own first
 * workspaces by creation, in the order and with the cursors a page of that organization alone
 * gives, after a cursor too, and a member sees only what its role lets it see.
 */
let app: TestApp;
const owner = uniqueEmail('pages-owner');
const member = uniqueEmail('pages-member');
const organizations: string[] = [];
/** Per organization, its workspaces' ids by creation; and which are restricted. */
const workspacesOf = new Map<string, string[]>();
const restricted = new Set<string>();

beforeAll(async () => {
  app = await startTestApp();
  for (let o = 0; o < 3; o += 1) {
    const org = await createOrganization(app, owner);
    organizations.push(org.id);
    await setFeatureFlag(app, org.id, 'restricted_workspaces', true, owner);
    // 1 + 3 + o workspaces: pages of 2 leave every organization more than one page, each a different count.
    for (let w = 0; w < 3 + o; w += 1) {
      const visibility = w === 1 ? 'RESTRICTED' : 'ORGANIZATION';
      const id = ok(
        await app.gql(`mutation($o: ID!, $i: CreateWorkspaceInput!) { createWorkspace(organizationId: $o, input: $i) { id } }`, { o: org.id, i: { name: `W${o}-${w}`, visibility } }, { as: owner }),
      ).createWorkspace.id as string;
      if (visibility === 'RESTRICTED') restricted.add(id);
    }
    if (o < 2) await addMember(app, org.id, member, 'member');
  }
  for (const id of organizations) {
    const rows = await readAll<{ id: string }>(app, `SELECT id FROM workspaces WHERE organization_id = $1 ORDER BY created_at, id`, [id]);
    workspacesOf.set(id, rows.map((r) => r.id));
  }
});
afterAll(async () => {
  await app?.close();
});

const PAGE = `workspaces(first: 2, after: $after) { totalCount nodes { id } pageInfo { hasNextPage endCursor } }`;
const nested = (as: string, after: string | null) =>
  app.gql(`query($after: String) { me { organizations(first: 10) { nodes { id ${PAGE} } } } }`, { after }, { as });
const alone = async (as: string, organizationId: string, after: string | null) =>
  ok(await app.gql(`query($o: ID!, $after: String) { organization(id: $o) { ${PAGE} } }`, { o: organizationId, after }, { as })).organization.workspaces;

it("gives each organization of a nested list its own first page, as a page of that organization alone does, and the next one after its cursor", async () => {
  const data = ok(await nested(owner, null));
  const pages = new Map<string, any>(data.me.organizations.nodes.map((n: any) => [n.id, n.workspaces]));
  expect([...pages.keys()].sort()).toEqual([...organizations].sort());
  for (const id of organizations) {
    const all = workspacesOf.get(id)!;
    const page = pages.get(id);
    expect(page.nodes.map((n: { id: string }) => n.id)).toEqual(all.slice(0, 2));
    expect({ totalCount: page.totalCount, hasNextPage: page.pageInfo.hasNextPage }).toEqual({ totalCount: all.length, hasNextPage: true });
    expect(page).toEqual(await alone(owner, id, null));
    // The second page, after the first one's cursor: nested (every organization after the same cursor) and alone.
    const second = await alone(owner, id, page.pageInfo.endCursor);
    expect(second.nodes.map((n: { id: string }) => n.id)).toEqual(all.slice(2, 4));
    const nestedSecond = ok(await nested(owner, page.pageInfo.endCursor)).me.organizations.nodes.find((n: { id: string }) => n.id === id).workspaces;
    expect(nestedSecond.nodes).toEqual(second.nodes);
  }
});

it('shows a member of two of the organizations only their ORGANIZATION workspaces, page by page, and nothing of the third', async () => {
  const data = ok(await nested(member, null));
  const pages = new Map<string, any>(data.me.organizations.nodes.map((n: any) => [n.id, n.workspaces]));
  expect([...pages.keys()].sort()).toEqual(organizations.slice(0, 2).sort());
  for (const id of organizations.slice(0, 2)) {
    const visible = workspacesOf.get(id)!.filter((w) => !restricted.has(w));
    const page = pages.get(id);
    expect(page.nodes.map((n: { id: string }) => n.id)).toEqual(visible.slice(0, 2));
    expect(page.nodes.some((n: { id: string }) => restricted.has(n.id))).toBe(false);
    expect(page).toEqual(await alone(member, id, null));
    const second = await alone(member, id, page.pageInfo.endCursor);
    expect(second.nodes.map((n: { id: string }) => n.id)).toEqual(visible.slice(2, 4));
  }
});
