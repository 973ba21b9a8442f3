import { codes, ok, startTestApp, type GqlResult, type TestApp } from '../../helpers/app';
import { readAll } from '../../helpers/db';
import { addMember, createOrganization, uniqueEmail, type CreatedOrganization } from '../../helpers/factories';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

const ENV_FIELDS = `id name slug tier deploymentHost executionBackend isActive destroyedAt hasCloudCredentials resources { cpu ramMb diskGb }`;
const CREATE = `mutation($ws: ID!, $input: CreateEnvironmentInput!) { createEnvironment(workspaceId: $ws, input: $input) { ${ENV_FIELDS} } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateEnvironmentInput!) { updateEnvironment(id: $id, input: $input) { ${ENV_FIELDS} } }`;
const DESTROY = `mutation($id: ID!) { destroyEnvironment(id: $id) { ${ENV_FIELDS} } }`;
const ENVS = `query($id: ID!, $all: Boolean, $tier: EnvironmentTier) { workspace(id: $id) { environments(includeDestroyed: $all, tier: $tier) { id slug tier isActive } } }`;
const RES = { cpu: 0.5, ramMb: 512, diskGb: 5 };
const SECRET = 'AKIA-SECRET-123';
const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

const createEnv = (as: string, ws: string, input: Record<string, unknown>) => app.gql(CREATE, { ws, input: { tier: 'DEV', resources: RES, ...input } }, { as });
const createWs = async (as: string, org: string, name: string): Promise<string> =>
  ok(await app.gql(`mutation($org: ID!, $name: String!) { createWorkspace(organizationId: $org, input: { name: $name }) { id } }`, { org, name }, { as })).createWorkspace.id;

async function auditEvents(orgId: string, owner: string): Promise<GqlResult> {
  return app.gql(
    `query($id: ID!) { organization(id: $id) { auditEvents(first: 100) { nodes { action resourceId workspaceId changes metadata resourceName } } } }`,
    { id: orgId },
    { as: owner },
  );
}
interface AuditNode {
  action: string;
  resourceId: string | null;
  workspaceId: string | null;
  changes: { changedFields: string[]; oldValues: Record<string, unknown>; newValues: Record<string, unknown> } | null;
}
interface EnvNode {
  id: string;
  slug: string;
  tier: string;
  isActive: boolean;
}
const eventsFor = async (orgId: string, owner: string, resourceId: string): Promise<AuditNode[]> =>
  ok(await auditEvents(orgId, owner)).organization.auditEvents.nodes.filter((e: AuditNode) => e.resourceId === resourceId);
const actionCount = async (orgId: string, owner: string, action: string): Promise<number> =>
  ok(await auditEvents(orgId, owner)).organization.auditEvents.nodes.filter((e: AuditNode) => e.action === action).length;
const environmentCount = async (orgId: string, as: string): Promise<number> =>
  ok(await app.gql(`query($id: ID!) { organization(id: $id) { environmentCount } }`, { id: orgId }, { as })).organization.environmentCount;
const envList = async (ws: string, as: string, vars: Record<string, unknown> = {}) => ok(await app.gql(ENVS, { id: ws, ...vars }, { as })).workspace.environments as EnvNode[];

describe('createEnvironment', () => {
  const owner = uniqueEmail('env-owner');
  let org: CreatedOrganization;
  beforeAll(async () => {
    org = await createOrganization(app, owner);
  });

  it('creates with the tier, LOCALHOST by default, the resources echoed and one environment.created', async () => {
    const env = ok(await createEnv(owner, org.defaultWorkspaceId, { name: 'API Server', tier: 'STAGE', resources: { cpu: 1.25, ramMb: 1024, diskGb: 10 } })).createEnvironment;
    expect(env).toMatchObject({
      name: 'API Server',
      slug: 'api-server',
      tier: 'STAGE',
      deploymentHost: 'LOCALHOST',
      executionBackend: null,
      isActive: true,
      destroyedAt: null,
      hasCloudCredentials: false,
      resources: { cpu: 1.25, ramMb: 1024, diskGb: 10 },
    });
    const aws = ok(await createEnv(owner, org.defaultWorkspaceId, { name: 'On AWS', deploymentHost: 'AWS' })).createEnvironment;
    expect(aws.deploymentHost).toBe('AWS');
    expect((await eventsFor(org.id, owner, env.id)).map((e) => [e.action, e.workspaceId])).toEqual([['environment.created', org.defaultWorkspaceId]]);
    expect(await environmentCount(org.id, owner)).toBe(2);
  });

  it('derives slugs within the workspace: -2 on collision, the same slug free in another workspace', async () => {
    const ws = await createWs(owner, org.id, 'Slugs');
    const other = await createWs(owner, org.id, 'Other Slugs');
    const a = ok(await createEnv(owner, ws, { name: 'Worker Pool' })).createEnvironment;
    const b = ok(await createEnv(owner, ws, { name: 'Worker Pool' })).createEnvironment;
    const c = ok(await createEnv(owner, other, { name: 'Worker Pool' })).createEnvironment;
    expect([a.slug, b.slug, c.slug]).toEqual(['worker-pool', 'worker-pool-2', 'worker-pool']);
    const explicit = await createEnv(owner, ws, { name: 'X', slug: 'worker-pool' });
    expect(codes(explicit)).toEqual(['CONFLICT']);
    expect(explicit.errors![0]!.message).toBe(`Environment with slug 'worker-pool' already exists`);
  });

  it('frees the slug of a destroyed environment', async () => {
    const ws = await createWs(owner, org.id, 'Reuse');
    const first = ok(await createEnv(owner, ws, { name: 'Scratch' })).createEnvironment;
    ok(await app.gql(DESTROY, { id: first.id }, { as: owner }));
    const derived = ok(await createEnv(owner, ws, { name: 'Scratch' })).createEnvironment;
    expect(derived.slug).toBe('scratch');
    ok(await app.gql(DESTROY, { id: derived.id }, { as: owner }));
    const explicit = ok(await createEnv(owner, ws, { name: 'Again', slug: 'scratch' })).createEnvironment;
    expect(explicit).toMatchObject({ slug: 'scratch', isActive: true });
    expect((await envList(ws, owner, { all: true })).map((e) => e.slug)).toEqual(['scratch', 'scratch', 'scratch']);
  });

  it.each([
    ['resources.cpu', { cpu: 0.05, ramMb: 512, diskGb: 5 }],
    ['resources.ramMb', { cpu: 0.5, ramMb: 32, diskGb: 5 }],
    ['resources.diskGb', { cpu: 0.5, ramMb: 512, diskGb: 0 }],
  ])('refuses resources below the minimum with BAD_USER_INPUT on %s, creating nothing', async (fieldName, resources) => {
    const ws = await createWs(owner, org.id, `Bounds ${fieldName}`);
    const countBefore = await environmentCount(org.id, owner);
    const eventsBefore = await actionCount(org.id, owner, 'environment.created');
    const result = await createEnv(owner, ws, { name: 'Too Small', resources });
    expect(codes(result)).toEqual(['BAD_USER_INPUT']);
    expect(result.errors![0]!.extensions!.field).toBe(fieldName);
    expect(result.data).toBeNull();
    expect(await envList(ws, owner, { all: true })).toEqual([]);
    expect(await environmentCount(org.id, owner)).toBe(countBefore);
    expect(await actionCount(org.id, owner, 'environment.created')).toBe(eventsBefore);
  });
});

describe('environment permissions, destroy and lookups', () => {
  const owner = uniqueEmail('env-perm-owner');
  const admin = uniqueEmail('env-perm-admin');
  const member = uniqueEmail('env-perm-member');
  const viewer = uniqueEmail('env-perm-viewer');
  let org: CreatedOrganization;
  let ws: string;
  beforeAll(async () => {
    org = await createOrganization(app, owner);
    await addMember(app, org.id, admin, 'admin');
    await addMember(app, org.id, member, 'member');
    await addMember(app, org.id, viewer, 'viewer');
    ws = await createWs(owner, org.id, 'Perms');
  });

  it('lets a member create and update, refuses a viewer with FORBIDDEN', async () => {
    const env = ok(await createEnv(member, ws, { name: 'Member Env' })).createEnvironment;
    const updated = ok(await app.gql(UPDATE, { id: env.id, input: { name: 'Renamed', tier: 'PROD' } }, { as: member })).updateEnvironment;
    expect(updated).toMatchObject({ id: env.id, name: 'Renamed', slug: 'member-env', tier: 'PROD' });
    const before = await environmentCount(org.id, owner);
    const denied = await createEnv(viewer, ws, { name: 'Viewer Env' });
    expect(codes(denied)).toEqual(['FORBIDDEN']);
    expect(denied.data).toBeNull();
    expect(await environmentCount(org.id, owner)).toBe(before);
  });

  it('destroys only with environment.destroy; hides the destroyed one unless includeDestroyed; twice is PRECONDITION_FAILED', async () => {
    const env = ok(await createEnv(member, ws, { name: 'Short Lived' })).createEnvironment;
    const countBefore = await environmentCount(org.id, owner);

    const denied = await app.gql(DESTROY, { id: env.id }, { as: member });
    expect(codes(denied)).toEqual(['FORBIDDEN']);
    expect(await environmentCount(org.id, owner)).toBe(countBefore);

    const destroyed = ok(await app.gql(DESTROY, { id: env.id }, { as: admin })).destroyEnvironment;
    expect(destroyed).toMatchObject({ id: env.id, isActive: false });
    expect(destroyed.destroyedAt).toMatch(ISO_MS);
    expect(Math.abs(Date.parse(destroyed.destroyedAt) - Date.now())).toBeLessThan(60_000);
    expect(await environmentCount(org.id, owner)).toBe(countBefore - 1);
    expect((await envList(ws, owner)).map((e) => e.id)).not.toContain(env.id);
    expect((await envList(ws, owner, { all: true })).find((e) => e.id === env.id)).toMatchObject({ isActive: false });

    const again = await app.gql(DESTROY, { id: env.id }, { as: admin });
    expect(codes(again)).toEqual(['PRECONDITION_FAILED']);
    const actions = (await eventsFor(org.id, owner, env.id)).map((e) => e.action).sort();
    expect(actions).toEqual(['environment.created', 'environment.destroyed']);
  });

  it('returns null without an error for a missing nested slug and filters by tier', async () => {
    const ws = await createWs(owner, org.id, 'Lookups');
    const prod = ok(await createEnv(owner, ws, { name: 'Live', tier: 'PROD' })).createEnvironment;
    const dev = ok(await createEnv(owner, ws, { name: 'Sandbox', tier: 'DEV' })).createEnvironment;
    const gone = ok(await createEnv(owner, ws, { name: 'Old Live', tier: 'PROD' })).createEnvironment;
    ok(await app.gql(DESTROY, { id: gone.id }, { as: owner }));
    const result = await app.gql(
      `query($id: ID!) { workspace(id: $id) { id missing: environment(slug: "missing") { id } live: environment(slug: "live") { id } } }`,
      { id: ws },
      { as: viewer },
    );
    expect(result.errors).toBeUndefined();
    expect(result.data!.workspace).toEqual({ id: ws, missing: null, live: { id: prod.id } });
    expect((await envList(ws, viewer, { tier: 'PROD' })).map((e) => e.id)).toEqual([prod.id]);
    expect((await envList(ws, viewer, { tier: 'PROD', all: true })).map((e) => e.id).sort()).toEqual([prod.id, gone.id].sort());
    expect((await envList(ws, viewer, { tier: 'DEV' })).map((e) => e.id)).toEqual([dev.id]);
    expect((await envList(ws, viewer)).map((e) => e.id).sort()).toEqual([prod.id, dev.id].sort());
  });
});

describe('cloudCredentials', () => {
  const owner = uniqueEmail('env-creds');
  let org: CreatedOrganization;
  beforeAll(async () => {
    org = await createOrganization(app, owner);
  });

  const dbRow = (id: string) =>
    readAll(app, `SELECT encode(cloud_credentials, 'escape') AS c FROM environments WHERE id = $1`, [id]).then((rows) => rows[0]);

  it('stores credentials encrypted, never returns them and keeps them out of audit', async () => {
    const created = await createEnv(owner, org.defaultWorkspaceId, { name: 'Cloud', cloudCredentials: { accessKey: SECRET } });
    const env = ok(created).createEnvironment;
    expect(env.hasCloudCredentials).toBe(true);
    expect(JSON.stringify(created)).not.toContain(SECRET);
    const read = await app.gql(`query($id: ID!) { environment(id: $id) { ${ENV_FIELDS} workspace { environments { ${ENV_FIELDS} } } } }`, { id: env.id }, { as: owner });
    expect(ok(read).environment.hasCloudCredentials).toBe(true);
    expect(JSON.stringify(read)).not.toContain(SECRET);

    const audit = await auditEvents(org.id, owner);
    expect(ok(audit).organization.auditEvents.nodes.some((e: AuditNode) => e.resourceId === env.id)).toBe(true);
    expect(JSON.stringify(audit)).not.toContain(SECRET);

    const row = await dbRow(env.id);
    expect(row).toBeDefined();
    expect(typeof row.c).toBe('string');
    expect(row.c.length).toBeGreaterThan(SECRET.length);
    expect(row.c).not.toContain(SECRET);
    const all = await readAll(app, `SELECT encode(cloud_credentials, 'escape') AS c FROM environments WHERE cloud_credentials IS NOT NULL`);
    expect(all.length).toBeGreaterThanOrEqual(1);
    for (const r of all) expect(r.c).not.toContain(SECRET);
    const keys = await readAll(app, `SELECT encode(wrapped_key, 'hex') AS k FROM organization_keys WHERE organization_id = $1`, [org.id]);
    expect(keys).toHaveLength(1);
    expect(keys[0].k.length).toBeGreaterThanOrEqual(64);
    expect(keys[0].k).not.toContain(Buffer.from(SECRET).toString('hex'));
    expect(Buffer.from(keys[0].k, 'hex').toString('utf8')).not.toContain(SECRET);
  });

  it('removes credentials with null, auditing the change without any secret; one event per mutation', async () => {
    const env = ok(await createEnv(owner, org.defaultWorkspaceId, { name: 'Cloud Two', cloudCredentials: { accessKey: SECRET } })).createEnvironment;
    const replaced = await app.gql(UPDATE, { id: env.id, input: { cloudCredentials: { accessKey: 'AKIA-SECRET-456' } } }, { as: owner });
    expect(ok(replaced).updateEnvironment.hasCloudCredentials).toBe(true);
    expect((await dbRow(env.id)).c).not.toContain('AKIA-SECRET-456');

    const cleared = await app.gql(UPDATE, { id: env.id, input: { cloudCredentials: null } }, { as: owner });
    expect(ok(cleared).updateEnvironment).toMatchObject({ id: env.id, hasCloudCredentials: false, name: 'Cloud Two' });
    expect((await dbRow(env.id)).c).toBeNull();

    const audit = await auditEvents(org.id, owner);
    const text = JSON.stringify(audit);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('AKIA-SECRET-456');
    const updates = (await eventsFor(org.id, owner, env.id)).filter((e) => e.action === 'environment.updated');
    expect(updates).toHaveLength(2);
    const removal = updates.find((e) => e.changes?.newValues.cloudCredentials === null)?.changes;
    expect(removal?.changedFields).toEqual(['cloudCredentials']);
    expect(removal?.newValues).toEqual({ cloudCredentials: null });
    expect(Object.keys(removal?.oldValues ?? {})).toEqual(['cloudCredentials']);
    expect(removal?.oldValues.cloudCredentials).not.toBeNull();

    ok(await app.gql(DESTROY, { id: env.id }, { as: owner }));
    const actions = (await eventsFor(org.id, owner, env.id)).map((e) => e.action).sort();
    expect(actions).toEqual(['environment.created', 'environment.destroyed', 'environment.updated', 'environment.updated']);
  });
});
