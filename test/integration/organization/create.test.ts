import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { uniqueEmail } from '../../helpers/factories';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

const CREATE = `mutation($input: CreateOrganizationInput!) {
  createOrganization(input: $input) { id slug name billingEmail status isActive memberCount workspaceCount environmentCount
    owner { email } viewerRole { key } workspaces { totalCount nodes { slug isDefault } } } }`;

describe('createOrganization', () => {
  it('makes the caller owner, creates the default workspace and writes exactly one audit event', async () => {
    const owner = uniqueEmail('owner');
    const data = ok(await app.gql(CREATE, { input: { name: 'Acme Ümlaut Co.' } }, { as: owner }));
    const org = data.createOrganization;
    expect(org).toMatchObject({
      slug: 'acme-umlaut-co',
      billingEmail: owner,
      status: 'ACTIVE',
      isActive: true,
      memberCount: 1,
      workspaceCount: 1,
      environmentCount: 0,
      owner: { email: owner },
      viewerRole: { key: 'owner' },
      workspaces: { totalCount: 1, nodes: [{ slug: 'default', isDefault: true }] },
    });
    const audit = ok(await app.gql(`query($id: ID!) { organization(id: $id) { auditEvents { edges { node { action resourceId actor { type email } } } } } }`, { id: org.id }, { as: owner }));
    expect(audit.organization.auditEvents.edges.map((e: any) => e.node)).toEqual([
      { action: 'organization.created', resourceId: org.id, actor: { type: 'USER', email: owner } },
    ]);
  });

  it('gives 10 parallel creates with the same name 10 distinct slugs', async () => {
    const owner = uniqueEmail('parallel');
    const name = `Parallel ${Date.now()}`;
    const results = await Promise.all(Array.from({ length: 10 }, () => app.gql(CREATE, { input: { name } }, { as: owner })));
    const slugs = results.map((r) => ok(r).createOrganization.slug as string);
    expect(new Set(slugs).size).toBe(10);
    const base = name.toLowerCase().replace(/ /g, '-');
    expect(slugs.sort()).toEqual([base, ...Array.from({ length: 9 }, (_, i) => `${base}-${i + 2}`)].sort());
  });

  it('lets exactly one of 10 parallel creates with the same explicit slug succeed; the rest get CONFLICT', async () => {
    const owner = uniqueEmail('explicit');
    const slug = `explicit-${Date.now()}`;
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => app.gql(CREATE, { input: { name: `E${i}`, slug } }, { as: owner })));
    expect(results.filter((r) => !r.errors).length).toBe(1);
    const failures = results.filter((r) => r.errors);
    expect(failures.map((r) => codes(r))).toEqual(Array.from({ length: 9 }, () => ['CONFLICT']));
    expect(failures[0]!.errors![0]!.message).toBe(`Organization with slug '${slug}' already exists`);
    const mine = ok(await app.gql(`{ me { organizations { totalCount } } }`, {}, { as: owner }));
    expect(mine.me.organizations.totalCount).toBe(1);
  });

  it('refuses an anonymous request with UNAUTHENTICATED and HTTP 401', async () => {
    const result = await app.gql(CREATE, { input: { name: 'Nobody' } });
    expect(result.status).toBe(401);
    expect(codes(result)).toEqual(['UNAUTHENTICATED']);
  });
});
