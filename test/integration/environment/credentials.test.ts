import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll, withAllRows } from '../../helpers/db';
import { createOrganization, uniqueEmail } from '../../helpers/factories';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

const CREATE = `mutation($ws: ID!, $input: CreateEnvironmentInput!) { createEnvironment(workspaceId: $ws, input: $input) { id hasCloudCredentials } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateEnvironmentInput!) { updateEnvironment(id: $id, input: $input) { id hasCloudCredentials } }`;
const base = { name: 'Creds', tier: 'DEV', resources: { cpu: 0.5, ramMb: 256, diskGb: 1 } };

/** Decrypts what the database holds for an environment, on a connection that sees every row (so null means none). */
async function storedCredentials(organizationId: string, environmentId: string): Promise<unknown> {
  return withAllRows(app, async (runner) => {
    const [row] = await runner.query(`SELECT cloud_credentials FROM environments WHERE organization_id = $1 AND id = $2`, [organizationId, environmentId]);
    if (!row?.cloud_credentials) return null;
    const query = (sql: string, params?: unknown[]) => runner.query(sql, params);
    return JSON.parse(await app.envelope.open(query, organizationId, `environment:${environmentId}:cloudCredentials`, Buffer.from(row.cloud_credentials)));
  });
}

describe('cloudCredentials', () => {
  it('stores exactly the latest credentials, encrypted, and decryptable only for their own row', async () => {
    const owner = uniqueEmail('creds');
    const org = await createOrganization(app, owner);
    const created = ok(await app.gql(CREATE, { ws: org.defaultWorkspaceId, input: { ...base, cloudCredentials: { key: 'first-secret' } } }, { as: owner }));
    const id = created.createEnvironment.id;
    expect(await storedCredentials(org.id, id)).toEqual({ key: 'first-secret' });
    ok(await app.gql(UPDATE, { id, input: { cloudCredentials: { key: 'second-secret', region: 'eu' } } }, { as: owner }));
    expect(await storedCredentials(org.id, id)).toEqual({ key: 'second-secret', region: 'eu' });
    ok(await app.gql(UPDATE, { id, input: { name: 'Renamed' } }, { as: owner }));
    expect(await storedCredentials(org.id, id)).toEqual({ key: 'second-secret', region: 'eu' });
    // Bound to its row: the same ciphertext presented as another environment's does not open.
    const other = ok(await app.gql(CREATE, { ws: org.defaultWorkspaceId, input: { ...base, name: 'Other' } }, { as: owner })).createEnvironment.id;
    await expect(
      withAllRows(app, async (runner) => {
        const [row] = await runner.query(`SELECT cloud_credentials FROM environments WHERE id = $1`, [id]);
        return app.envelope.open((sql, params) => runner.query(sql, params), org.id, `environment:${other}:cloudCredentials`, Buffer.from(row.cloud_credentials));
      }),
    ).rejects.toThrow();
  });

  it('refuses a non-object without echoing it back, and an empty object, changing nothing', async () => {
    const owner = uniqueEmail('echo');
    const org = await createOrganization(app, owner);
    const secret = 'AKIA-ECHO-SECRET-42';
    const attempts = [
      app.gql(CREATE, { ws: org.defaultWorkspaceId, input: { ...base, cloudCredentials: secret } }, { as: owner }),
      app.gql(CREATE, { ws: org.defaultWorkspaceId, input: { ...base, cloudCredentials: [secret] } }, { as: owner }),
      app.gql(
        `mutation($ws: ID!) { createEnvironment(workspaceId: $ws, input: { name: "L", tier: DEV, resources: { cpu: 0.5, ramMb: 256, diskGb: 1 }, cloudCredentials: "${secret}" }) { id } }`,
        { ws: org.defaultWorkspaceId },
        { as: owner },
      ),
      app.gql(CREATE, { ws: org.defaultWorkspaceId, input: { ...base, cloudCredentials: {} } }, { as: owner }),
    ];
    for (const result of await Promise.all(attempts)) {
      expect(codes(result)).toEqual(['BAD_USER_INPUT']);
      expect(result.errors![0]!.extensions?.field).toBe('cloudCredentials');
      expect(JSON.stringify(result)).not.toContain(secret);
    }
    const count = ok(await app.gql(`query($id: ID!) { organization(id: $id) { environmentCount } }`, { id: org.id }, { as: owner }));
    expect(count.organization.environmentCount).toBe(0);
    expect(await readAll(app, `SELECT count(*)::int AS n FROM environments WHERE organization_id = $1`, [org.id])).toEqual([{ n: 0 }]);
  });
});

describe('changeOrganizationSlug', () => {
  it('is refused while an environment is active, and allowed once none is', async () => {
    const owner = uniqueEmail('slugenv');
    const org = await createOrganization(app, owner);
    const env = ok(await app.gql(CREATE, { ws: org.defaultWorkspaceId, input: base }, { as: owner })).createEnvironment.id;
    const slug = `moved-${Date.now()}`;
    const CHANGE = `mutation($id: ID!, $slug: String!) { changeOrganizationSlug(id: $id, slug: $slug) { slug } }`;
    const refused = await app.gql(CHANGE, { id: org.id, slug }, { as: owner });
    expect(codes(refused)).toEqual(['PRECONDITION_FAILED']);
    expect(refused.errors![0]!.extensions?.reason).toBe('ACTIVE_ENVIRONMENTS');
    expect(refused.errors![0]!.message).toBe(
      'Cannot change the slug of an organization with 1 active environment: running environments may be addressed by it. Destroy it first.',
    );
    ok(await app.gql(`mutation($id: ID!) { destroyEnvironment(id: $id) { id } }`, { id: env }, { as: owner }));
    expect(ok(await app.gql(CHANGE, { id: org.id, slug }, { as: owner })).changeOrganizationSlug.slug).toBe(slug);
  });
});
