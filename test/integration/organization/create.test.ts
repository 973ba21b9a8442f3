import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll } from '../../helpers/db';
import { uniqueEmail } from '../../helpers/factories';
import { concurrently, outcomes, PARALLEL, RACE_NOTE, ROUNDS } from '../../helpers/races';

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

  it(`gives ${PARALLEL} parallel creates with the same name ${PARALLEL} distinct slugs and one organization.created event each, ${ROUNDS} rounds ${RACE_NOTE}`, async () => {
    for (let round = 1; round <= ROUNDS; round += 1) {
      const owner = uniqueEmail('parallel');
      const name = `Parallel ${round} ${Date.now()}`;
      const results = await concurrently(PARALLEL, () => app.gql(CREATE, { input: { name } }, { as: owner }));
      expect({ round, outcomes: outcomes(results) }).toEqual({ round, outcomes: { ok: PARALLEL } });
      const slugs = results.map((r) => ok(r).createOrganization.slug as string);
      const base = name.toLowerCase().replace(/ /g, '-');
      expect(slugs.sort()).toEqual([base, ...Array.from({ length: PARALLEL - 1 }, (_, i) => `${base}-${i + 2}`)].sort());
      const ids = results.map((r) => ok(r).createOrganization.id as string).sort();
      expect(await readAll(app, `SELECT id FROM organizations WHERE name = $1 ORDER BY id`, [name])).toEqual(ids.map((id) => ({ id })));
      const events = await readAll<{ id: string; n: number }>(
        app,
        `SELECT resource_id AS id, count(*)::int AS n FROM audit_events WHERE action = 'organization.created' AND resource_name = $1 GROUP BY resource_id ORDER BY resource_id`,
        [name],
      );
      expect(events).toEqual(ids.map((id) => ({ id, n: 1 })));
    }
  });

  it(`lets exactly one of ${PARALLEL} parallel creates with the same explicit slug succeed; the rest get CONFLICT and write nothing, ${ROUNDS} rounds ${RACE_NOTE}`, async () => {
    for (let round = 1; round <= ROUNDS; round += 1) {
      const owner = uniqueEmail('explicit');
      const slug = `explicit-${round}-${Date.now()}`;
      const results = await concurrently(PARALLEL, (i) => app.gql(CREATE, { input: { name: `${slug} E${i}`, slug } }, { as: owner }));
      expect({ round, outcomes: outcomes(results) }).toEqual({ round, outcomes: { ok: 1, '200:CONFLICT': PARALLEL - 1 } });
      for (const r of results.filter((x) => x.errors)) expect(r.errors![0]!.message).toBe(`Organization with slug '${slug}' already exists`);
      const winner = ok(results.find((r) => !r.errors)!).createOrganization;
      expect(await readAll(app, `SELECT id FROM organizations WHERE slug = $1 OR name LIKE $2`, [slug, `${slug} E%`])).toEqual([{ id: winner.id }]);
      expect(await readAll(app, `SELECT resource_id FROM audit_events WHERE resource_name LIKE $1`, [`${slug} E%`])).toEqual([{ resource_id: winner.id }]);
      const mine = ok(await app.gql(`{ me { organizations { totalCount } } }`, {}, { as: owner }));
      expect(mine.me.organizations.totalCount).toBe(1);
    }
  });

  it('refuses an anonymous request with UNAUTHENTICATED and HTTP 401', async () => {
    const result = await app.gql(CREATE, { input: { name: 'Nobody' } });
    expect(result.status).toBe(401);
    expect(codes(result)).toEqual(['UNAUTHENTICATED']);
  });
});
