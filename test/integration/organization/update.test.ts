import { codes, type GqlResult, ok, startTestApp, type TestApp } from '../../helpers/app';
import { addMember, createOrganization, uniqueEmail } from '../../helpers/factories';

interface AuditNode { action: string; changes: Record<string, unknown> | null }

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

const READ = `query($id: ID!) { organization(id: $id) {
  name slug description website logoUrl industry primaryDomain contactEmail billingEmail updatedAt
  settings { timezone defaultBranch defaultStorageProvider notificationEmail extra }
  security { requireMfa sessionTimeoutMinutes ipAllowlist apiKeyMaxLifetimeDays allowUserKeyOverride }
  branding { primaryColor secondaryColor accentColor fontFamily } banner { message variant dismissible }
  auditEvents(first: 100) { nodes { action changes } } } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateOrganizationInput!) { updateOrganization(id: $id, input: $input) {
  name description website industry contactEmail settings { timezone defaultBranch } security { ipAllowlist } } }`;
const SLUG = `mutation($id: ID!, $slug: String!) { changeOrganizationSlug(id: $id, slug: $slug) { slug } }`;
const CREATE = `mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { id slug } }`;
const COUNT = `{ me { organizations { totalCount } } }`;

const read = async (id: string, as: string) => ok(await app.gql(READ, { id }, { as })).organization;
const actions = async (id: string, as: string): Promise<string[]> => (await read(id, as)).auditEvents.nodes.map((n: AuditNode) => n.action);

function expectBadInput(result: GqlResult, field: string): void {
  expect(codes(result)).toEqual(['BAD_USER_INPUT']);
  expect(result.errors![0]!.extensions!.field).toBe(field);
  expect(result.data).toBeNull();
}

describe('updateOrganization: PATCH semantics', () => {
  it('leaves omitted fields unchanged and clears nullable fields given an explicit null', async () => {
    const owner = uniqueEmail('patch');
    const org = await createOrganization(app, owner, { description: 'First', website: 'https://acme.example' });
    const step1 = ok(await app.gql(UPDATE, { id: org.id, input: { industry: 'Retail', contactEmail: 'hello@acme.example', settings: { timezone: 'Europe/Paris' } } }, { as: owner }));
    expect(step1.updateOrganization).toMatchObject({
      description: 'First',
      website: 'https://acme.example',
      industry: 'Retail',
      contactEmail: 'hello@acme.example',
      settings: { timezone: 'Europe/Paris', defaultBranch: 'main' },
    });
    const name = step1.updateOrganization.name;
    const step2 = ok(await app.gql(UPDATE, { id: org.id, input: { description: null, website: null, industry: null, contactEmail: null } }, { as: owner }));
    expect(step2.updateOrganization).toEqual({
      name,
      description: null,
      website: null,
      industry: null,
      contactEmail: null,
      settings: { timezone: 'Europe/Paris', defaultBranch: 'main' },
      security: { ipAllowlist: [] },
    });
    const after = await read(org.id, owner);
    expect(after).toMatchObject({ name, slug: org.slug, description: null, website: null, industry: null, contactEmail: null, billingEmail: owner });
  });

  it('refuses name: null with BAD_USER_INPUT on name and changes nothing', async () => {
    const owner = uniqueEmail('nullname');
    const org = await createOrganization(app, owner);
    const before = await read(org.id, owner);
    expectBadInput(await app.gql(UPDATE, { id: org.id, input: { name: null } }, { as: owner }), 'name');
    expect(await read(org.id, owner)).toEqual(before);
  });
});

describe('updateOrganization: validation', () => {
  const owner = uniqueEmail('validation');
  let id: string;
  beforeAll(async () => {
    id = (await createOrganization(app, owner)).id;
  });

  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['empty name', { name: '' }, 'name'],
    ['blank name', { name: '   ' }, 'name'],
    ['256-character name', { name: 'n'.repeat(256) }, 'name'],
    ['javascript: website', { website: 'javascript:alert(1)' }, 'website'],
    ['data: website', { website: 'data:text/html,x' }, 'website'],
    ['relative website', { website: 'not a url' }, 'website'],
    ['ftp website', { website: 'ftp://x.y' }, 'website'],
    ['logoUrl over 512 characters', { logoUrl: `https://cdn.example.com/${'a'.repeat(500)}.png` }, 'logoUrl'],
    ['bad billingEmail', { billingEmail: 'nope' }, 'billingEmail'],
    ['bad contactEmail', { contactEmail: 'someone@' }, 'contactEmail'],
    ['unknown time zone', { settings: { timezone: 'Mars/Olympus' } }, 'settings.timezone'],
    ['settings.extra over 16 KiB', { settings: { extra: { blob: 'x'.repeat(16 * 1024) } } }, 'settings.extra'],
    ['CIDR prefix out of range', { security: { ipAllowlist: ['10.0.0.0/33'] } }, 'ipAllowlist'],
    ['not an IP', { security: { ipAllowlist: ['not-an-ip'] } }, 'ipAllowlist'],
    ['allowlist excluding the caller', { security: { ipAllowlist: ['10.0.0.0/8'] } }, 'ipAllowlist'],
    ['named colour', { branding: { primaryColor: 'red' } }, 'branding.primaryColor'],
  ];

  test.each(cases)('%s → BAD_USER_INPUT on the field, organization unchanged, no audit event', async (_label, input, field) => {
    const before = await read(id, owner);
    expectBadInput(await app.gql(UPDATE, { id, input }, { as: owner }), field);
    const after = await read(id, owner);
    expect(after).toEqual(before);
    expect(after.auditEvents.nodes.map((n: AuditNode) => n.action)).toEqual(['organization.created']);
  });

  it('accepts values exactly at the limits (name 255, logoUrl 512, settings.extra 16 KiB)', async () => {
    const org = await createOrganization(app, owner);
    const logoUrl = `https://cdn.example.com/${'a'.repeat(512 - 24)}`;
    const extra = { blob: 'x'.repeat(16 * 1024 - '{"blob":""}'.length) };
    ok(await app.gql(UPDATE, { id: org.id, input: { name: `  ${'n'.repeat(255)}  `, logoUrl, settings: { extra } } }, { as: owner }));
    const after = await read(org.id, owner);
    expect(after).toMatchObject({ name: 'n'.repeat(255), logoUrl, settings: { extra } });
    expect(logoUrl.length).toBe(512);
    expect(after.auditEvents.nodes[0].changes.changedFields).toEqual(['name', 'logoUrl', 'settings.extra']);
  });

  it('accepts an allowlist that includes the caller (127.0.0.1), IPv4 or mixed with IPv6', async () => {
    const org = await createOrganization(app, owner);
    const first = ok(await app.gql(UPDATE, { id: org.id, input: { security: { ipAllowlist: ['127.0.0.0/8'] } } }, { as: owner }));
    expect(first.updateOrganization.security).toEqual({ ipAllowlist: ['127.0.0.0/8'] });
    const second = ok(await app.gql(UPDATE, { id: org.id, input: { security: { ipAllowlist: ['::1/128', '127.0.0.1/32'] } } }, { as: owner }));
    expect(second.updateOrganization.security).toEqual({ ipAllowlist: ['::1/128', '127.0.0.1/32'] });
    expect((await read(org.id, owner)).security.ipAllowlist).toEqual(['::1/128', '127.0.0.1/32']);
  });
});

describe('updateOrganization: audit', () => {
  it('writes exactly one organization.updated event listing exactly the changed fields', async () => {
    const owner = uniqueEmail('audit');
    const org = await createOrganization(app, owner, { name: 'Before Name' });
    // description: null is no change (it is null already); defaultBranch given equal to the current value.
    ok(await app.gql(UPDATE, { id: org.id, input: { name: 'After Name', description: null, settings: { timezone: 'Asia/Tokyo', defaultBranch: 'main' } } }, { as: owner }));
    const events = (await read(org.id, owner)).auditEvents.nodes;
    expect(events.map((e: AuditNode) => e.action)).toEqual(['organization.updated', 'organization.created']);
    expect(events[0].changes).toEqual({
      changedFields: ['name', 'settings.timezone'],
      oldValues: { name: 'Before Name', 'settings.timezone': 'UTC' },
      newValues: { name: 'After Name', 'settings.timezone': 'Asia/Tokyo' },
    });
  });
});

describe('changeOrganizationSlug', () => {
  const owner = uniqueEmail('slug');
  let id: string;
  let slug: string;
  beforeAll(async () => {
    ({ id, slug } = await createOrganization(app, owner));
  });

  const badSlugs: Array<[string, string]> = [['Bad Slug', 'Bad Slug'], ['UPPER', 'UPPER'], ['-x', '-x'], ['a--b', 'a--b'], ['x-', 'x-'], ['101 characters', 's'.repeat(101)]];
  test.each(badSlugs)('refuses %j with BAD_USER_INPUT on slug and changes nothing', async (_label, bad) => {
    const before = await read(id, owner);
    expectBadInput(await app.gql(SLUG, { id, slug: bad }, { as: owner }), 'slug');
    expect(await read(id, owner)).toEqual(before);
  });

  it('refuses a reserved slug with BAD_USER_INPUT', async () => {
    const result = await app.gql(SLUG, { id, slug: 'admin' }, { as: owner });
    expectBadInput(result, 'slug');
    expect((await read(id, owner)).slug).toBe(slug);
  });

  it("refuses another organization's slug with CONFLICT and the spec's message", async () => {
    const other = await createOrganization(app, uniqueEmail('other'), { slug: `taken-${Date.now()}` });
    const result = await app.gql(SLUG, { id, slug: other.slug }, { as: owner });
    expect(codes(result)).toEqual(['CONFLICT']);
    expect(result.errors![0]!.message).toBe(`Organization with slug '${other.slug}' already exists`);
    expect((await read(id, owner)).slug).toBe(slug);
    expect(await actions(id, owner)).toEqual(['organization.created']);
  });

  it('changes the slug and writes one organization.slug_changed event', async () => {
    const next = `renamed-${Date.now()}`;
    expect(ok(await app.gql(SLUG, { id, slug: next }, { as: owner })).changeOrganizationSlug.slug).toBe(next);
    const events = (await read(id, owner)).auditEvents.nodes;
    expect(events.map((e: AuditNode) => e.action)).toEqual(['organization.slug_changed', 'organization.created']);
    expect(events[0].changes).toEqual({ changedFields: ['slug'], oldValues: { slug }, newValues: { slug: next } });
    expect(ok(await app.gql(`query($s: String!) { organization(slug: $s) { id } }`, { s: next }, { as: owner })).organization.id).toBe(id);
  });
});

describe('createOrganization slugs', () => {
  it('refuses an explicit invalid slug with BAD_USER_INPUT on slug and creates nothing', async () => {
    const owner = uniqueEmail('badslug');
    await createOrganization(app, owner);
    const before = ok(await app.gql(COUNT, {}, { as: owner })).me.organizations.totalCount;
    expectBadInput(await app.gql(CREATE, { input: { name: 'Valid Name', slug: 'Not Valid' } }, { as: owner }), 'slug');
    expect(ok(await app.gql(COUNT, {}, { as: owner })).me.organizations.totalCount).toBe(before);
    expect(before).toBe(1);
  });

  it('derives slugs: accents stripped, punctuation dropped; a reserved word gets a suffix', async () => {
    const owner = uniqueEmail('derive');
    expect(ok(await app.gql(CREATE, { input: { name: 'Crème Brûlée!!' } }, { as: owner })).createOrganization.slug).toBe('creme-brulee');
    expect(ok(await app.gql(CREATE, { input: { name: 'Admin' } }, { as: owner })).createOrganization.slug).toBe('admin-2');
  });
});

describe('field-level permissions', () => {
  it('gives a viewer null settings and security with FORBIDDEN at their paths while siblings resolve', async () => {
    const owner = uniqueEmail('fields');
    const viewer = uniqueEmail('viewer');
    const org = await createOrganization(app, owner, { name: 'Visible Name' });
    await addMember(app, org.id, viewer, 'viewer');
    const result = await app.gql(`query($id: ID!) { organization(id: $id) { name settings { timezone } security { requireMfa } } }`, { id: org.id }, { as: viewer });
    expect(result.data).toEqual({ organization: { name: 'Visible Name', settings: null, security: null } });
    const errors = (result.errors ?? []).map((e) => ({ path: e.path, code: e.extensions?.code }));
    expect(errors.sort((a, b) => String(a.path).localeCompare(String(b.path)))).toEqual([
      { path: ['organization', 'security'], code: 'FORBIDDEN' },
      { path: ['organization', 'settings'], code: 'FORBIDDEN' },
    ]);
  });
});

describe('organizations pagination', () => {
  const owner = uniqueEmail('pages');
  const ids: string[] = [];
  const PAGE = `query($first: Int, $after: String) { organizations(first: $first, after: $after) {
    totalCount nodes { id } edges { cursor } pageInfo { hasNextPage endCursor } } }`;
  beforeAll(async () => {
    for (let i = 0; i < 5; i += 1) ids.push((await createOrganization(app, owner, { name: `Page Org ${i}` })).id);
  });

  test.each([101, -1])('refuses first: %d with BAD_USER_INPUT on first', async (first) => {
    expectBadInput(await app.gql(PAGE, { first }, { as: owner }), 'first');
  });

  it('answers first: 0 with no nodes and the right totalCount', async () => {
    const page = ok(await app.gql(PAGE, { first: 0 }, { as: owner })).organizations;
    expect(page.nodes).toEqual([]);
    expect(page.edges).toEqual([]);
    expect(page.totalCount).toBe(5);
  });

  it('pages forward through all 5 organizations exactly once, in creation order', async () => {
    const seen: string[] = [];
    const hasNext: boolean[] = [];
    let after: string | null = null;
    for (let i = 0; i < 5; i += 1) {
      const page: { totalCount: number; nodes: Array<{ id: string }>; pageInfo: { hasNextPage: boolean; endCursor: string | null } } = ok(
        await app.gql(PAGE, { first: 2, after }, { as: owner }),
      ).organizations;
      expect(page.totalCount).toBe(5);
      seen.push(...page.nodes.map((n) => n.id));
      hasNext.push(page.pageInfo.hasNextPage);
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(seen).toEqual(ids);
    expect(hasNext).toEqual([true, true, false]);
  });

  it('refuses a garbage cursor with BAD_USER_INPUT on after', async () => {
    expectBadInput(await app.gql(PAGE, { first: 2, after: 'definitely-not-a-cursor' }, { as: owner }), 'after');
  });
});
