import { ok, startTestApp, usesRealPostgres, type TestApp } from '../../helpers/app';
import { createOrganization, uniqueEmail, type CreatedOrganization } from '../../helpers/factories';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

const ENV_FIELDS = `id name tier resources { cpu ramMb diskGb }`;
const CREATE = `mutation($ws: ID!, $input: CreateEnvironmentInput!) { createEnvironment(workspaceId: $ws, input: $input) { ${ENV_FIELDS} } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateEnvironmentInput!) { updateEnvironment(id: $id, input: $input) { id } }`;
const GET = `query($id: ID!) { environment(id: $id) { ${ENV_FIELDS} } }`;

interface AuditNode {
  action: string;
  resourceId: string | null;
  changes: { changedFields: string[]; oldValues: Record<string, unknown>; newValues: Record<string, unknown> } | null;
}

async function events(orgId: string, owner: string, action: string, resourceId: string): Promise<AuditNode[]> {
  const data = ok(
    await app.gql(`query($id: ID!) { organization(id: $id) { auditEvents(first: 100) { nodes { action resourceId changes } } } }`, { id: orgId }, { as: owner }),
  );
  return data.organization.auditEvents.nodes.filter((e: AuditNode) => e.action === action && e.resourceId === resourceId);
}

const resources = (i: number) => ({ cpu: 0.5, ramMb: 512 + 64 * i, diskGb: 5 });

describe('concurrent updateEnvironment', () => {
  const owner = uniqueEmail('env-race-owner');
  let org: CreatedOrganization;
  beforeAll(async () => {
    org = await createOrganization(app, owner);
  });

  it(`keeps both of two concurrent updates (name, resources), with a consistent audit chain (${usesRealPostgres() ? 'PostgreSQL' : 'PGlite'})`, async () => {
    const env = ok(await app.gql(CREATE, { ws: org.defaultWorkspaceId, input: { name: 'env-0', tier: 'DEV', resources: resources(0) } }, { as: owner }))
      .createEnvironment;
    const iterations = 10;
    for (let i = 1; i <= iterations; i++) {
      const [a, b] = await Promise.all([
        app.gql(UPDATE, { id: env.id, input: { name: `env-${i}` } }, { as: owner }),
        app.gql(UPDATE, { id: env.id, input: { resources: resources(i) } }, { as: owner }),
      ]);
      ok(a);
      ok(b);
      const current = ok(await app.gql(GET, { id: env.id }, { as: owner })).environment;
      expect({ iteration: i, name: current.name, resources: current.resources }).toEqual({ iteration: i, name: `env-${i}`, resources: resources(i) });
    }

    // Every event names only its own field, and for each field the old value is the previous new one.
    const updated = await events(org.id, owner, 'environment.updated', env.id);
    expect(updated).toHaveLength(2 * iterations);
    const names = updated.filter((e) => e.changes!.changedFields.includes('name')).map((e) => e.changes!);
    names.sort((x, y) => Number(String(x.newValues.name).slice(4)) - Number(String(y.newValues.name).slice(4)));
    expect(names).toEqual(
      Array.from({ length: iterations }, (_, k) => ({ changedFields: ['name'], oldValues: { name: `env-${k}` }, newValues: { name: `env-${k + 1}` } })),
    );
    const rams = updated.filter((e) => e.changes!.changedFields.includes('resources.ramMb')).map((e) => e.changes!);
    rams.sort((x, y) => Number(x.newValues['resources.ramMb']) - Number(y.newValues['resources.ramMb']));
    expect(rams).toEqual(
      Array.from({ length: iterations }, (_, k) => ({
        changedFields: ['resources.ramMb'],
        oldValues: { 'resources.ramMb': resources(k).ramMb },
        newValues: { 'resources.ramMb': resources(k + 1).ramMb },
      })),
    );
  });
});
