import { ok, startTestApp, type TestApp } from '../../helpers/app';
import { createOrganization, uniqueEmail } from '../../helpers/factories';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

const TREE = `{ me { organizations { totalCount nodes {
  id name memberCount workspaceCount environmentCount owner { email } viewerRole { key }
  workspaces { totalCount nodes { id slug viewerPermissions environments { id slug resources { cpu } } } }
} } } }`;

/** Builds organizations × workspaces, each workspace with one environment. */
async function build(owner: string, organizations: number, workspaces: number): Promise<void> {
  for (let o = 0; o < organizations; o += 1) {
    const org = await createOrganization(app, owner);
    const ids = [org.defaultWorkspaceId];
    const created = await Promise.all(
      Array.from({ length: workspaces - 1 }, (_, w) =>
        app.gql(`mutation($o: ID!, $n: String!) { createWorkspace(organizationId: $o, input: { name: $n }) { id } }`, { o: org.id, n: `WS ${w}` }, { as: owner }),
      ),
    );
    ids.push(...created.map((r) => ok(r).createWorkspace.id as string));
    await Promise.all(
      ids.map((id) =>
        app.gql(
          `mutation($w: ID!) { createEnvironment(workspaceId: $w, input: { name: "Dev", tier: DEV, resources: { cpu: 0.5, ramMb: 256, diskGb: 1 } }) { id } }`,
          { w: id },
          { as: owner },
        ).then(ok),
      ),
    );
  }
}

async function statementsFor(owner: string): Promise<{ statements: number; data: any }> {
  const result = await app.gql(TREE, {}, { as: owner });
  return { statements: Number(result.headers.get('x-sql-statements')), data: ok(result) };
}

describe('nested lists are batched', () => {
  it('costs the same number of SQL statements for 2 organizations × 2 workspaces as for 20 × 10', async () => {
    const small = uniqueEmail('small');
    const large = uniqueEmail('large');
    await build(small, 2, 2);
    await build(large, 20, 10);

    const a = await statementsFor(small);
    const b = await statementsFor(large);

    expect(a.data.me.organizations.totalCount).toBe(2);
    expect(b.data.me.organizations.totalCount).toBe(20);
    const workspaces = b.data.me.organizations.nodes.flatMap((o: any) => o.workspaces.nodes);
    expect(workspaces).toHaveLength(200);
    expect(workspaces.every((w: any) => w.environments.length === 1)).toBe(true);
    expect(b.data.me.organizations.nodes.every((o: any) => o.workspaceCount === 10 && o.environmentCount === 10 && o.memberCount === 1)).toBe(true);
    expect(a.statements).toBeGreaterThan(0);
    expect(b.statements).toBe(a.statements);
  });
});
