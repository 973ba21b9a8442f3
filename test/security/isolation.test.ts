import { randomUUID } from 'node:crypto';
import { APP_ROLE } from '../../src/database/roles';
import { type GqlResult, ok, startTestApp, type TestApp } from '../helpers/app';
import { createOrganization, type CreatedOrganization, uniqueEmail } from '../helpers/factories';

/**
 * Tenant isolation at the API (SPEC §3): for the owner of organization B, every id or slug of
 * organization A is indistinguishable from one that does not exist or is malformed.
 */

let app: TestApp;
let orgA: CreatedOrganization;
let orgB: CreatedOrganization;
const ownerA = uniqueEmail('iso-a');
const ownerB = uniqueEmail('iso-b');
const ids = { userA: '', userB: '', envA: '', wsA2: '' };
let mutations = new Set<string>();
let snapshotA: unknown;
let auditCountB = 0;

const RESOURCES = { cpu: 1, ramMb: 512, diskGb: 10 };
const MALFORMED = ['not-a-uuid', "' OR '1'='1"];

const SNAPSHOT_A = `query($id: ID!, $ws: ID!, $env: ID!) {
  organization(id: $id) { name slug description updatedAt memberCount workspaceCount environmentCount
    auditEvents(first: 100) { nodes { id action } } workspaces(first: 100) { nodes { id name slug updatedAt } } }
  workspace(id: $ws) { name slug members { user { id } role } }
  environment(id: $env) { name isActive updatedAt } }`;
const snapshot = async () => ok(await app.gql(SNAPSHOT_A, { id: orgA.id, ws: orgA.defaultWorkspaceId, env: ids.envA }, { as: ownerA }));
const auditCount = async (orgId: string, as: string) =>
  ok(await app.gql(`query($id: ID!) { organization(id: $id) { auditEvents(first: 100) { nodes { id } } } }`, { id: orgId }, { as })).organization.auditEvents.nodes.length;

beforeAll(async () => {
  app = await startTestApp();
  orgA = await createOrganization(app, ownerA);
  orgB = await createOrganization(app, ownerB);
  ids.userA = ok(await app.gql(`{ me { user { id } } }`, {}, { as: ownerA })).me.user.id;
  ids.userB = ok(await app.gql(`{ me { user { id } } }`, {}, { as: ownerB })).me.user.id;
  const schema = ok(await app.gql(`{ __schema { mutationType { fields { name } } } }`, {}, { as: ownerA }));
  mutations = new Set(schema.__schema.mutationType.fields.map((f: { name: string }) => f.name));

  if (mutations.has('createEnvironment')) {
    const created = await app.gql(
      `mutation($ws: ID!, $input: CreateEnvironmentInput!) { createEnvironment(workspaceId: $ws, input: $input) { id } }`,
      { ws: orgA.defaultWorkspaceId, input: { name: 'A Production', tier: 'PROD', resources: RESOURCES } },
      { as: ownerA },
    );
    ids.envA = ok(created).createEnvironment.id;
  } else {
    // Written as the app role scoped to A, like any request would.
    ids.envA = await app.db.withConnection(async (runner) => {
      await runner.startTransaction();
      await runner.query(`SELECT set_config('role', $1, true), set_config('app.org_ids', $2, true)`, [APP_ROLE, orgA.id]);
      const [row] = await runner.query(
        `INSERT INTO environments (organization_id, workspace_id, name, slug, tier, cpu, ram_mb, disk_gb) VALUES ($1, $2, 'A Production', 'a-production', 'PROD', 1, 512, 10) RETURNING id`,
        [orgA.id, orgA.defaultWorkspaceId],
      );
      await runner.commitTransaction();
      return row.id as string;
    });
  }
  // A second, deletable (non-default, no environment) workspace: a broken check on deleteWorkspace would really delete it.
  if (mutations.has('createWorkspace')) {
    const created = await app.gql(`mutation($org: ID!) { createWorkspace(organizationId: $org, input: { name: "Second" }) { id } }`, { org: orgA.id }, { as: ownerA });
    ids.wsA2 = ok(created).createWorkspace.id;
  } else {
    ids.wsA2 = orgA.defaultWorkspaceId;
  }
  snapshotA = await snapshot();
  auditCountB = await auditCount(orgB.id, ownerB);
});
afterAll(async () => {
  await app?.close();
});

interface Case {
  name: string;
  doc: string;
  vars: (v: string) => Record<string, unknown>;
  kind: string;
  path: string[];
  target: () => string;
  /** Valid-looking but unknown, and malformed values; ids by default. */
  others?: () => string[];
  mutation?: string;
  /** A query that A's owner may run: the positive control proving the target is a real, reachable value. */
  control?: boolean;
}

const slugs = () => [`no-such-org-${Date.now()}`, 'NOT A SLUG!', '../default'];

const CASES: Case[] = [
  { name: 'Query.organization(id)', doc: `query($v: ID!) { organization(id: $v) { id name } }`, vars: (v) => ({ v }), kind: 'Organization', path: ['organization'], target: () => orgA.id, control: true },
  { name: 'Query.organization(slug)', doc: `query($v: String!) { organization(slug: $v) { id name } }`, vars: (v) => ({ v }), kind: 'Organization', path: ['organization'], target: () => orgA.slug, others: slugs, control: true },
  { name: 'Query.workspace(id)', doc: `query($v: ID!) { workspace(id: $v) { id name } }`, vars: (v) => ({ v }), kind: 'Workspace', path: ['workspace'], target: () => orgA.defaultWorkspaceId, control: true },
  { name: 'Query.environment(id)', doc: `query($v: ID!) { environment(id: $v) { id name } }`, vars: (v) => ({ v }), kind: 'Environment', path: ['environment'], target: () => ids.envA, control: true },
  { name: 'me.permissions(organizationId)', doc: `query($v: ID!) { me { permissions(organizationId: $v) } }`, vars: (v) => ({ v }), kind: 'Organization', path: ['me', 'permissions'], target: () => orgA.id },
  { name: 'me.permissions(own organizationId, workspaceId of A)', doc: `query($o: ID!, $v: ID!) { me { permissions(organizationId: $o, workspaceId: $v) } }`, vars: (v) => ({ o: orgB.id, v }), kind: 'Workspace', path: ['me', 'permissions'], target: () => orgA.defaultWorkspaceId },
  { name: 'updateOrganization(id)', mutation: 'updateOrganization', doc: `mutation($v: ID!) { updateOrganization(id: $v, input: { name: "Hijacked", description: "pwned" }) { id } }`, vars: (v) => ({ v }), kind: 'Organization', path: ['updateOrganization'], target: () => orgA.id },
  { name: 'changeOrganizationSlug(id)', mutation: 'changeOrganizationSlug', doc: `mutation($v: ID!, $s: String!) { changeOrganizationSlug(id: $v, slug: $s) { id } }`, vars: (v) => ({ v, s: `hijacked-${Date.now()}` }), kind: 'Organization', path: ['changeOrganizationSlug'], target: () => orgA.id },
  { name: 'createWorkspace(organizationId)', mutation: 'createWorkspace', doc: `mutation($v: ID!) { createWorkspace(organizationId: $v, input: { name: "Planted" }) { id } }`, vars: (v) => ({ v }), kind: 'Organization', path: ['createWorkspace'], target: () => orgA.id },
  { name: 'updateWorkspace(id)', mutation: 'updateWorkspace', doc: `mutation($v: ID!) { updateWorkspace(id: $v, input: { name: "Hijacked" }) { id } }`, vars: (v) => ({ v }), kind: 'Workspace', path: ['updateWorkspace'], target: () => ids.wsA2 },
  { name: 'deleteWorkspace(id)', mutation: 'deleteWorkspace', doc: `mutation($v: ID!) { deleteWorkspace(id: $v) }`, vars: (v) => ({ v }), kind: 'Workspace', path: ['deleteWorkspace'], target: () => ids.wsA2 },
  { name: 'setWorkspaceMemberRole(workspaceId of A, self)', mutation: 'setWorkspaceMemberRole', doc: `mutation($v: ID!, $u: ID!) { setWorkspaceMemberRole(workspaceId: $v, userId: $u, role: WORKSPACE_ADMIN) { id } }`, vars: (v) => ({ v, u: ids.userB }), kind: 'Workspace', path: ['setWorkspaceMemberRole'], target: () => orgA.defaultWorkspaceId },
  { name: 'setWorkspaceMemberRole(own workspace, userId of A)', mutation: 'setWorkspaceMemberRole', doc: `mutation($w: ID!, $v: ID!) { setWorkspaceMemberRole(workspaceId: $w, userId: $v, role: WORKSPACE_VIEWER) { id } }`, vars: (v) => ({ w: orgB.defaultWorkspaceId, v }), kind: 'User', path: ['setWorkspaceMemberRole'], target: () => ids.userA },
  { name: 'createEnvironment(workspaceId)', mutation: 'createEnvironment', doc: `mutation($v: ID!, $r: EnvironmentResourcesInput!) { createEnvironment(workspaceId: $v, input: { name: "Planted", tier: DEV, resources: $r }) { id } }`, vars: (v) => ({ v, r: RESOURCES }), kind: 'Workspace', path: ['createEnvironment'], target: () => orgA.defaultWorkspaceId },
  { name: 'updateEnvironment(id)', mutation: 'updateEnvironment', doc: `mutation($v: ID!) { updateEnvironment(id: $v, input: { name: "Hijacked" }) { id } }`, vars: (v) => ({ v }), kind: 'Environment', path: ['updateEnvironment'], target: () => ids.envA },
  { name: 'destroyEnvironment(id)', mutation: 'destroyEnvironment', doc: `mutation($v: ID!) { destroyEnvironment(id: $v) { id } }`, vars: (v) => ({ v }), kind: 'Environment', path: ['destroyEnvironment'], target: () => ids.envA },
];

/** The whole answer, for comparing the three variants byte for byte (minus the request id header). */
const shape = (r: GqlResult) => ({ status: r.status, data: r.data, errors: r.errors });

describe('organization B owner probing organization A', () => {
  it.each(CASES)('$name: NOT_FOUND, identical for A’s value, an unknown one and a malformed one', async (c) => {
    if (c.mutation && !mutations.has(c.mutation)) return; // not (yet) in the schema
    const target = c.target();
    expect(target).toBeTruthy();
    if (c.control) {
      const control = await app.gql(c.doc, c.vars(target), { as: ownerA });
      expect(control.errors).toBeUndefined();
      expect(control.data?.[c.path[0]!]).toMatchObject({ id: expect.any(String) });
    }
    const values = [target, ...(c.others?.() ?? [randomUUID(), ...MALFORMED])];
    const results = [];
    for (const v of values) results.push(await app.gql(c.doc, c.vars(v), { as: ownerB }));
    const [first, ...rest] = results.map(shape);
    expect(first!.status).toBe(200);
    expect(first!.errors).toHaveLength(1);
    expect(first!.errors![0]).toMatchObject({ message: `${c.kind} not found`, path: c.path, extensions: { code: 'NOT_FOUND' } });
    for (const other of rest) expect(other).toEqual(first);
    for (const [i, r] of results.entries()) expect(JSON.stringify(r.errors)).not.toContain(values[i]!);
    expect(JSON.stringify(first)).not.toContain(orgA.id);
  });

  it('_entities: every A representation is null with NOT_FOUND at ["_entities", i], like unknown and malformed ids', async () => {
    const doc = `query($r: [_Any!]!) { _entities(representations: $r) { __typename
      ... on Organization { id name } ... on Workspace { id name } ... on Environment { id name } ... on User { id email } } }`;
    const kinds = ['Organization', 'Workspace', 'Environment', 'User'];
    const reps = (values: string[]) => kinds.map((__typename, i) => ({ __typename, id: values[i] }));
    const ofA = [orgA.id, orgA.defaultWorkspaceId, ids.envA, ids.userA];

    const control = await app.gql(doc, { r: reps(ofA) }, { as: ownerA });
    expect(control.errors).toBeUndefined();
    expect(control.data!._entities.map((e: { id: string }) => e.id)).toEqual(ofA);

    const sorted = (r: GqlResult) => ({ ...shape(r), errors: [...(r.errors ?? [])].sort((x, y) => Number(x.path![1]) - Number(y.path![1])) });
    const attack = sorted(await app.gql(doc, { r: reps(ofA) }, { as: ownerB }));
    expect(attack.status).toBe(200);
    expect(attack.data).toEqual({ _entities: [null, null, null, null] });
    expect(attack.errors.map((e) => ({ message: e.message, path: e.path, code: e.extensions?.code }))).toEqual(
      kinds.map((k, i) => ({ message: `${k} not found`, path: ['_entities', i], code: 'NOT_FOUND' })),
    );
    for (const value of ofA) expect(JSON.stringify(attack)).not.toContain(value);
    const unknown = sorted(await app.gql(doc, { r: reps(kinds.map(() => randomUUID())) }, { as: ownerB }));
    const malformed = sorted(await app.gql(doc, { r: reps(kinds.map(() => 'not-a-uuid')) }, { as: ownerB }));
    expect(unknown).toEqual(attack);
    expect(malformed).toEqual(attack);
  });

  it('_entities: a malformed reference does not poison the request (the own organization still resolves)', async () => {
    const doc = `query($r: [_Any!]!) { _entities(representations: $r) { ... on Organization { id } ... on User { id } } }`;
    const r = [{ __typename: 'User', id: 'not-a-uuid' }, { __typename: 'Organization', id: orgB.id }, { __typename: 'Workspace', id: 'nope' }];
    const result = await app.gql(doc, { r }, { as: ownerB });
    expect(result.data).toEqual({ _entities: [null, { id: orgB.id }, null] });
    expect((result.errors ?? []).map((e) => [e.path, e.extensions?.code, e.message]).sort()).toEqual([
      [['_entities', 0], 'NOT_FOUND', 'User not found'],
      [['_entities', 2], 'NOT_FOUND', 'Workspace not found'],
    ]);
  });

  it('left organization A exactly as it was, and wrote no audit event in B either', async () => {
    expect(await snapshot()).toEqual(snapshotA);
    const a = snapshotA as { organization: { auditEvents: { nodes: unknown[] }; name: string } };
    expect(a.organization.auditEvents.nodes.length).toBeGreaterThan(0);
    expect(a.organization.name).not.toBe('Hijacked');
    expect(await auditCount(orgB.id, ownerB)).toBe(auditCountB);
  });
});

describe('concurrent requests of 20 tenants', () => {
  it('each see only their own organization, in me.organizations and organizations, and write only their own', async () => {
    const owners = Array.from({ length: 20 }, (_, i) => uniqueEmail(`conc-${i}`));
    const orgs = await Promise.all(owners.map((o) => createOrganization(app, o)));
    const READ = `query($other: ID!) { me { user { email } organizations { totalCount nodes { id } } }
      organizations { totalCount nodes { id } } other: organization(id: $other) { id } }`;
    const WRITE = `mutation($id: ID!, $d: String!) { updateOrganization(id: $id, input: { description: $d }) { id description } }`;
    for (let round = 0; round < 2; round++) {
      const reads = owners.map((o, i) => app.gql(READ, { other: orgs[(i + 1) % 20]!.id }, { as: o }));
      const writes = owners.map((o, i) => app.gql(WRITE, { id: orgs[i]!.id, d: `${o}#${round}` }, { as: o }));
      const [readResults, writeResults] = await Promise.all([Promise.all(reads), Promise.all(writes)]);
      readResults.forEach((r, i) => {
        expect(r.data).toEqual({
          me: { user: { email: owners[i] }, organizations: { totalCount: 1, nodes: [{ id: orgs[i]!.id }] } },
          organizations: { totalCount: 1, nodes: [{ id: orgs[i]!.id }] },
          other: null,
        });
        expect(r.errors?.map((e) => [e.extensions?.code, e.message, e.path])).toEqual([['NOT_FOUND', 'Organization not found', ['other']]]);
      });
      writeResults.forEach((r, i) => expect(ok(r).updateOrganization).toEqual({ id: orgs[i]!.id, description: `${owners[i]}#${round}` }));
    }
    const after = await Promise.all(owners.map((o, i) => app.gql(`query($id: ID!) { organization(id: $id) { description } }`, { id: orgs[i]!.id }, { as: o })));
    after.forEach((r, i) => expect(ok(r).organization.description).toBe(`${owners[i]}#1`));
  });
});
