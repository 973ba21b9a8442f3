import { randomUUID } from 'node:crypto';
import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { addMember, createOrganization, type CreatedOrganization, uniqueEmail } from '../../helpers/factories';
import { AUDIT_QUERY, type AuditNode, seedEvents, type SeedEvent } from './helpers';

/**
 * SPEC §5 Audit, query side: `Query.auditEvents` and `Organization.auditEvents` — newest first,
 * filters combined with AND, keyset pagination stable under inserts, org.audit.view, no totalCount,
 * another organization's events never visible.
 */
let app: TestApp;
const owner = uniqueEmail('audit-owner');
const admin = uniqueEmail('audit-admin');
const member = uniqueEmail('audit-member');
const outsider = uniqueEmail('audit-outsider');
let org: CreatedOrganization;
let other: CreatedOrganization;
let ownerId: string;
let adminId: string;
/** Every event of `org`, newest first, as read unfiltered through the API before the filter tests. */
let all: AuditNode[];

const MINUTE = 60_000;
const base = Date.now() - 10 * 24 * 60 * MINUTE;
const at = (minutes: number) => new Date(base + minutes * MINUTE);
const ACTIONS = ['workspace.updated', 'member.role_changed', 'environment.created', 'feature.toggled'];

type Page = { auditEvents: { nodes: AuditNode[]; edges: Array<{ cursor: string; node: { id: string } }>; pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; endCursor: string | null } } };
async function page(as: string, variables: Record<string, unknown>) {
  return app.gql<{ auditEvents: { nodes: AuditNode[]; edges: Array<{ cursor: string; node: { id: string } }>; pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; endCursor: string | null } } }>(
    AUDIT_QUERY,
    variables,
    { as },
  );
}

/** Every page of a filtered listing, `first` at a time: the nodes in the order served. */
async function pages(as: string, filter: Record<string, unknown> | null, first: number, between?: () => Promise<void>): Promise<AuditNode[]> {
  const seen: AuditNode[] = [];
  let after: string | null = null;
  for (let i = 0; i < 1000; i += 1) {
    const data: Page['auditEvents'] = ok(await page(as, { org: org.id, filter, first, after })).auditEvents;
    seen.push(...data.nodes);
    expect(data.edges.map((e) => e.node.id)).toEqual(data.nodes.map((n) => n.id));
    expect(data.pageInfo.hasPreviousPage).toBe(after !== null);
    if (!data.pageInfo.hasNextPage) return seen;
    after = data.pageInfo.endCursor;
    await between?.();
  }
  throw new Error('too many pages');
}

/** Newest first: occurred_at descending, then id descending (the keyset order). */
const newestFirst = (a: AuditNode, b: AuditNode) => (a.occurredAt === b.occurredAt ? (a.id < b.id ? 1 : -1) : a.occurredAt < b.occurredAt ? 1 : -1);

beforeAll(async () => {
  app = await startTestApp();
  org = await createOrganization(app, owner);
  other = await createOrganization(app, outsider);
  adminId = await addMember(app, org.id, admin, 'admin');
  await addMember(app, org.id, member, 'member');
  ownerId = ok(await app.gql(`{ me { user { id } } }`, {}, { as: owner })).me.user.id;

  const resources = ['r-1', 'r-2', 'r-3'];
  const events: SeedEvent[] = [];
  for (let i = 0; i < 60; i += 1) {
    events.push({
      // Every third pair shares its instant with the next event: ties are ordered by id.
      occurredAt: at(i % 3 === 0 ? i : i - 1),
      action: ACTIONS[i % ACTIONS.length]!,
      actorId: i % 2 === 0 ? ownerId : adminId,
      actorEmail: i % 2 === 0 ? owner : admin,
      workspaceId: i % 5 === 0 ? null : org.defaultWorkspaceId,
      resourceType: i % 4 === 0 ? 'workspace' : 'environment',
      resourceId: resources[i % 3]!,
      resourceName: `name-${i}`,
      changes: i % 4 === 0 ? { changedFields: ['name'], oldValues: { name: `a${i}` }, newValues: { name: `b${i}` } } : null,
      metadata: { i },
    });
  }
  await seedEvents(app, org.id, events);
  // The other organization: the same actions, resources and even an event of the same actor id.
  await seedEvents(app, other.id, [
    { occurredAt: at(5), action: 'workspace.updated', actorId: ownerId, resourceType: 'workspace', resourceId: 'r-1' },
    { occurredAt: at(6), action: 'member.role_changed', resourceType: 'environment', resourceId: 'r-2', workspaceId: other.defaultWorkspaceId },
  ]);
  all = await pages(owner, null, 100);
});
afterAll(async () => {
  await app?.close();
});

describe('listing', () => {
  it('lists every event of the organization newest first, the same through Organization.auditEvents', async () => {
    // 60 seeded + what the API itself recorded (organization.created, the default workspace…).
    expect(all.length).toBeGreaterThanOrEqual(61);
    expect([...all].sort(newestFirst)).toEqual(all);
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
    expect(all.every((e) => e.organizationId === org.id)).toBe(true);
    const nested = ok(
      await app.gql(`query($id: ID!) { organization(id: $id) { auditEvents(first: 100) { nodes { id } } } }`, { id: org.id }, { as: owner }),
    ).organization.auditEvents.nodes.map((n: { id: string }) => n.id);
    expect(nested).toEqual(all.map((e) => e.id));
  });

  it('serves the fields of each event as stored', () => {
    const e = all.find((n) => n.resourceName === 'name-8')!;
    expect(e).toEqual({
      id: expect.any(String),
      occurredAt: at(7).toISOString(),
      action: 'workspace.updated',
      actor: { type: 'USER', id: ownerId, email: owner, name: null },
      organizationId: org.id,
      workspaceId: org.defaultWorkspaceId,
      resourceType: 'workspace',
      resourceId: 'r-3',
      resourceName: 'name-8',
      changes: { changedFields: ['name'], oldValues: { name: 'a8' }, newValues: { name: 'b8' } },
      metadata: { i: 8 },
    });
  });

  it('pages of any size add up to the whole list, in order, with no duplicate and no gap (ties on occurredAt included)', async () => {
    for (const size of [1, 7, 50]) expect((await pages(owner, null, size)).map((e) => e.id)).toEqual(all.map((e) => e.id));
    const empty = ok(await page(owner, { org: org.id, first: 0 })).auditEvents;
    expect(empty.nodes).toEqual([]);
    expect(empty.pageInfo.hasNextPage).toBe(true);
  });

  it('has no totalCount (the trail may hold millions of rows)', async () => {
    const result = await app.gql(`query($org: ID!) { auditEvents(organizationId: $org) { totalCount } }`, { org: org.id }, { as: owner });
    expect(codes(result)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
  });
});

describe('filters', () => {
  const cases: Array<[string, Record<string, unknown>, (e: AuditNode) => boolean]> = [
    ['actions', { actions: ['workspace.updated', 'feature.toggled'] }, (e) => ['workspace.updated', 'feature.toggled'].includes(e.action)],
    ['actorId', { actorId: '__admin__' }, (e) => e.actor.id === adminId],
    ['resourceType', { resourceType: 'workspace' }, (e) => e.resourceType === 'workspace'],
    ['resourceId', { resourceId: 'r-2' }, (e) => e.resourceId === 'r-2'],
    ['workspaceId', { workspaceId: '__ws__' }, (e) => e.workspaceId === org.defaultWorkspaceId],
    ['since (inclusive)', { since: at(21).toISOString() }, (e) => e.occurredAt >= at(21).toISOString()],
    ['until (exclusive)', { until: at(21).toISOString() }, (e) => e.occurredAt < at(21).toISOString()],
    [
      'all of them at once (AND)',
      { actions: ['workspace.updated', 'environment.created'], actorId: '__owner__', resourceType: 'workspace', resourceId: 'r-1', workspaceId: '__ws__', since: at(3).toISOString(), until: at(57).toISOString() },
      (e) =>
        ['workspace.updated', 'environment.created'].includes(e.action) &&
        e.actor.id === ownerId &&
        e.resourceType === 'workspace' &&
        e.resourceId === 'r-1' &&
        e.workspaceId === org.defaultWorkspaceId &&
        e.occurredAt >= at(3).toISOString() &&
        e.occurredAt < at(57).toISOString(),
    ],
  ];
  const resolve = (filter: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(filter).map(([k, v]) => [k, v === '__admin__' ? adminId : v === '__owner__' ? ownerId : v === '__ws__' ? org.defaultWorkspaceId : v]));

  it.each(cases)('%s: exactly the matching events, newest first, across pages', async (_name, filter, matches) => {
    const expected = all.filter(matches).map((e) => e.id);
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(all.length);
    expect((await pages(owner, resolve(filter), 4)).map((e) => e.id)).toEqual(expected);
  });

  it('since = until selects nothing; a filter nothing matches is an empty page', async () => {
    const instant = at(21).toISOString();
    expect((await pages(owner, { since: instant, until: instant }, 10)).length).toBe(0);
    expect((await pages(owner, { actions: ['nothing.matches'] }, 10)).length).toBe(0);
  });

  it("never shows another organization's events, whatever the filter names (its workspace, a shared actor id)", async () => {
    expect((await pages(owner, { workspaceId: other.defaultWorkspaceId }, 10)).length).toBe(0);
    const shared = await pages(owner, { actorId: ownerId, resourceId: 'r-1', actions: ['workspace.updated'] }, 10);
    expect(shared.every((e) => e.organizationId === org.id)).toBe(true);
    const theirs = await app.gql(AUDIT_QUERY, { org: other.id }, { as: outsider });
    expect(ok(theirs).auditEvents.nodes.every((e: AuditNode) => e.organizationId === other.id)).toBe(true);
  });
});

describe('bad input: BAD_USER_INPUT naming the field, nothing read', () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['since after until', { filter: { since: at(30).toISOString(), until: at(10).toISOString() } }, 'filter.until'],
    ['too many actions', { filter: { actions: Array.from({ length: 51 }, (_, i) => `a.b${i}`) } }, 'filter.actions'],
    ['an empty list of actions', { filter: { actions: [] } }, 'filter.actions'],
    ['something that is not an action', { filter: { actions: ["x'; DROP TABLE audit_events; --"] } }, 'filter.actions'],
    ['a malformed workspace id', { filter: { workspaceId: 'not-a-uuid' } }, 'filter.workspaceId'],
    ['an over-long resource id', { filter: { resourceId: 'x'.repeat(201) } }, 'filter.resourceId'],
    ['first above 100', { first: 101 }, 'first'],
    ['negative first', { first: -1 }, 'first'],
    ['a cursor that is not ours', { after: 'bm90LWEtY3Vyc29y' }, 'after'],
    ['a cursor of another shape', { after: Buffer.from(JSON.stringify(['2024-02-30T00:00:00.000Z', randomUUID()])).toString('base64url') }, 'after'],
  ];
  it.each(cases)('%s', async (_name, variables, field) => {
    const result = await page(owner, { org: org.id, ...variables });
    expect(codes(result)).toEqual(['BAD_USER_INPUT']);
    expect(result.errors![0]!.extensions!.field).toBe(field);
    expect(result.data).toBeNull();
  });

  it('a malformed DateTime is refused by the scalar', async () => {
    const result = await page(owner, { org: org.id, filter: { since: 'yesterday' } });
    expect(codes(result)).toEqual(['BAD_USER_INPUT']);
  });
});

describe('who may read the trail (org.audit.view)', () => {
  it('owner and admin read it; a member is FORBIDDEN; an outsider and a random id are NOT_FOUND; no token is UNAUTHENTICATED', async () => {
    expect(ok(await page(admin, { org: org.id, first: 3 })).auditEvents.nodes.map((n) => n.id)).toEqual(all.slice(0, 3).map((e) => e.id));
    const denied = await page(member, { org: org.id });
    expect(codes(denied)).toEqual(['FORBIDDEN']);
    expect(denied.data).toBeNull();
    expect(codes(await page(outsider, { org: org.id }))).toEqual(['NOT_FOUND']);
    const missing = await page(owner, { org: randomUUID() });
    expect(codes(missing)).toEqual(['NOT_FOUND']);
    expect(missing.errors![0]!.message).toBe('Organization not found');
    expect(codes(await page(owner, { org: 'not-a-uuid' }))).toEqual(['NOT_FOUND']);
    const anonymous = await app.gql(AUDIT_QUERY, { org: org.id });
    expect(codes(anonymous)).toEqual(['UNAUTHENTICATED']);
  });

  it('Organization.auditEvents is null with FORBIDDEN for a member; the rest of the organization still resolves', async () => {
    const result = await app.gql(`query($id: ID!) { organization(id: $id) { id auditEvents { nodes { id } } } }`, { id: org.id }, { as: member });
    expect(codes(result)).toEqual(['FORBIDDEN']);
    expect(result.data).toEqual({ organization: { id: org.id, auditEvents: null } });
  });
});

describe('keyset pagination under concurrent inserts', () => {
  it('while events are written between and during page reads, paging yields every earlier event once, in order, and none of the new ones', async () => {
    const before = await pages(owner, null, 100);
    let written = 0;
    // New events arrive through real mutations (each writes one event) and straight inserts at the database's now().
    const writeSome = async () => {
      await Promise.all([
        app.gql(`mutation($id: ID!, $d: String!) { updateOrganization(id: $id, input: { description: $d }) { id } }`, { id: org.id, d: `d${written}` }, { as: owner }).then(ok),
        seedEvents(app, org.id, [{ occurredAt: new Date(), action: 'workspace.updated', resourceType: 'workspace' }]),
      ]);
      written += 2;
    };
    const paging = pages(owner, null, 6, writeSome);
    const concurrent = Promise.all([writeSome(), writeSome()]);
    const [seen] = await Promise.all([paging, concurrent]);
    expect(written).toBeGreaterThan(10);
    // The first page may have been read before or after the concurrent writes; every later page is older than its cursor.
    const fresh = seen.filter((e) => !before.some((b) => b.id === e.id));
    expect(fresh.every((e) => seen.indexOf(e) < 6)).toBe(true);
    expect(seen.filter((e) => before.some((b) => b.id === e.id)).map((e) => e.id)).toEqual(before.map((e) => e.id));
    expect(new Set(seen.map((e) => e.id)).size).toBe(seen.length);
  });
});
