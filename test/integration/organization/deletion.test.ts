import { codes, type GqlResult, ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll, withAllRows } from '../../helpers/db';
import { addMember, createOrganization, type CreatedOrganization, uniqueEmail } from '../../helpers/factories';

/**
 * deleteOrganization / restoreOrganization (SPEC §5): every rule with its code, reason, field or
 * exact message; what members and the owner see of a deleted organization; its slug stays
 * reserved; the audit events. The purge is in purge.test.ts.
 */

let app: TestApp;

const ORG_FIELDS = 'id slug status isActive deletedAt purgeAt';
const DELETE = `mutation($id: ID!, $slug: String!) { deleteOrganization(id: $id, confirmSlug: $slug) { ${ORG_FIELDS} } }`;
const RESTORE = `mutation($id: ID!) { restoreOrganization(id: $id) { ${ORG_FIELDS} } }`;
const GET = `query($id: ID!) { organization(id: $id) { ${ORG_FIELDS} } }`;
const LIST = `{ organizations(first: 100) { totalCount nodes { id status } } me { memberships { organization { id } } } }`;
const CREATE_ENV = `mutation($ws: ID!, $name: String!) { createEnvironment(workspaceId: $ws, input: { name: $name, tier: DEV, resources: { cpu: 0.5, ramMb: 512, diskGb: 5 } }) { id } }`;
const DESTROY_ENV = `mutation($id: ID!) { destroyEnvironment(id: $id) { id isActive } }`;

interface OrgView {
  id: string;
  slug: string;
  status: string;
  isActive: boolean;
  deletedAt: string | null;
  purgeAt: string | null;
}

interface Team {
  org: CreatedOrganization;
  owner: string;
  admin: string;
  member: string;
}

async function team(label: string): Promise<Team> {
  const owner = uniqueEmail(`${label}-owner`);
  const org = await createOrganization(app, owner);
  const admin = uniqueEmail(`${label}-admin`);
  const member = uniqueEmail(`${label}-member`);
  await addMember(app, org.id, admin, 'admin');
  await addMember(app, org.id, member, 'member');
  return { org, owner, admin, member };
}

const del = (t: Team, as: string, slug = t.org.slug): Promise<GqlResult<{ deleteOrganization: OrgView }>> => app.gql(DELETE, { id: t.org.id, slug }, { as });
const restore = (t: Team, as: string): Promise<GqlResult<{ restoreOrganization: OrgView }>> => app.gql(RESTORE, { id: t.org.id }, { as });

const eventCount = async (organizationId: string, action: string): Promise<number> => {
  const [row] = await readAll<{ n: number }>(app, `SELECT count(*)::int AS n FROM audit_events WHERE organization_id = $1 AND action = $2`, [organizationId, action]);
  return row!.n;
};
const statusOf = async (organizationId: string): Promise<string> => {
  const [row] = await readAll<{ status: string }>(app, `SELECT status FROM organizations WHERE id = $1`, [organizationId]);
  return row!.status;
};
const setPurgeAt = (organizationId: string, sql: string) =>
  withAllRows(app, (runner) => runner.query(`UPDATE organizations SET purge_at = ${sql} WHERE id = $1`, [organizationId]));

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

describe('deleteOrganization: who may', () => {
  let t: Team;
  beforeAll(async () => {
    t = await team('who');
  });

  it('is FORBIDDEN to an admin and a member (no org.delete), NOT_FOUND to a stranger and for an unknown or malformed id', async () => {
    expect(codes(await del(t, t.admin))).toEqual(['FORBIDDEN']);
    expect(codes(await del(t, t.member))).toEqual(['FORBIDDEN']);
    const stranger = await del(t, uniqueEmail('stranger'));
    expect(codes(stranger)).toEqual(['NOT_FOUND']);
    expect(stranger.errors![0]!.message).toBe('Organization not found');
    expect(codes(await app.gql(DELETE, { id: '00000000-0000-4000-8000-000000000000', slug: t.org.slug }, { as: t.owner }))).toEqual(['NOT_FOUND']);
    expect(codes(await app.gql(DELETE, { id: 'nope', slug: t.org.slug }, { as: t.owner }))).toEqual(['NOT_FOUND']);
    expect(codes(await app.gql(DELETE, { id: t.org.id, slug: t.org.slug }))).toEqual(['UNAUTHENTICATED']);
    expect(await statusOf(t.org.id)).toBe('ACTIVE');
  });

  it('is FORBIDDEN to a custom role holding org.delete: only the owner deletes', async () => {
    ok(
      await app.gql(
        `mutation($org: ID!) { createRole(organizationId: $org, input: { key: "closer", name: "Closer", permissions: ["org.view", "org.delete"] }) { key } }`,
        { org: t.org.id },
        { as: t.owner },
      ),
    );
    const closer = uniqueEmail('closer');
    await addMember(app, t.org.id, closer, 'closer');
    const result = await del(t, closer);
    expect(codes(result)).toEqual(['FORBIDDEN']);
    expect(result.errors![0]!.message).toBe('Only the owner can delete the organization');
    expect(codes(await restore(t, closer))).toEqual(['FORBIDDEN']);
    expect(await statusOf(t.org.id)).toBe('ACTIVE');
  });

  it('is BAD_USER_INPUT (field confirmSlug) unless confirmSlug is exactly the slug', async () => {
    for (const wrong of [`${t.org.slug}-x`, t.org.slug.toUpperCase(), ` ${t.org.slug}`, '']) {
      const result = await del(t, t.owner, wrong);
      expect(codes(result)).toEqual(['BAD_USER_INPUT']);
      expect(result.errors![0]!.extensions!.field).toBe('confirmSlug');
    }
    expect(await statusOf(t.org.id)).toBe('ACTIVE');
    expect(await eventCount(t.org.id, 'organization.deleted')).toBe(0);
  });
});

describe('deleteOrganization: what blocks it', () => {
  it('is PRECONDITION_FAILED with the exact message while environments are active, and succeeds once they are destroyed', async () => {
    const t = await team('envs');
    const ids: string[] = [];
    for (const name of ['api', 'web']) ids.push(ok(await app.gql<{ createEnvironment: { id: string } }>(CREATE_ENV, { ws: t.org.defaultWorkspaceId, name }, { as: t.owner })).createEnvironment.id);

    const two = await del(t, t.owner);
    expect(codes(two)).toEqual(['PRECONDITION_FAILED']);
    expect(two.errors![0]!.message).toBe('Cannot delete organization with 2 active environments. Please destroy all environments first.');
    expect(two.errors![0]!.extensions).toMatchObject({ reason: 'ACTIVE_ENVIRONMENTS', activeEnvironments: 2 });

    // A wrong slug is BAD_USER_INPUT even while environments are active (SPEC §6 order).
    expect(codes(await del(t, t.owner, 'wrong'))).toEqual(['BAD_USER_INPUT']);

    ok(await app.gql(DESTROY_ENV, { id: ids[0] }, { as: t.owner }));
    const one = await del(t, t.owner);
    expect(one.errors![0]!.message).toBe('Cannot delete organization with 1 active environments. Please destroy all environments first.');
    expect(await eventCount(t.org.id, 'organization.deleted')).toBe(0);

    ok(await app.gql(DESTROY_ENV, { id: ids[1] }, { as: t.owner }));
    expect(ok(await del(t, t.owner)).deleteOrganization.status).toBe('DELETED');
  });

  it('is MFA_REQUIRED without a multi-factor token when the organization requires MFA, and succeeds with one', async () => {
    const t = await team('mfa');
    ok(await app.gql(`mutation($id: ID!) { updateOrganization(id: $id, input: { security: { requireMfa: true } }) { id } }`, { id: t.org.id }, { token: await app.token(t.owner, { mfa: true }) }));
    const refused = await del(t, t.owner);
    expect(codes(refused)).toEqual(['MFA_REQUIRED']);
    expect(refused.errors![0]!.message).toBe('Deleting this organization requires multi-factor authentication');
    // BAD_USER_INPUT comes first (SPEC §6).
    expect(codes(await del(t, t.owner, 'wrong'))).toEqual(['BAD_USER_INPUT']);
    expect(await statusOf(t.org.id)).toBe('ACTIVE');
    const mfaToken = await app.token(t.owner, { mfa: true });
    const deleted = await app.gql<{ deleteOrganization: OrgView }>(DELETE, { id: t.org.id, slug: t.org.slug }, { token: mfaToken });
    expect(ok(deleted).deleteOrganization.status).toBe('DELETED');
  });
});

describe('Organization.deletionImpact', () => {
  const IMPACT = `query($id: ID!) { organization(id: $id) { id deletionImpact { workspaces environments activeEnvironments members pendingInvitations apiKeys secrets blockers } } }`;

  it('counts what deletion would remove and lists the blockers, for the owner; null with FORBIDDEN for roles without org.delete', async () => {
    const t = await team('impact');
    ok(await app.gql(`mutation($org: ID!) { createWorkspace(organizationId: $org, input: { name: "Second" }) { id } }`, { org: t.org.id }, { as: t.owner }));
    const ids: string[] = [];
    for (const name of ['a', 'b', 'c']) ids.push(ok(await app.gql<{ createEnvironment: { id: string } }>(CREATE_ENV, { ws: t.org.defaultWorkspaceId, name }, { as: t.owner })).createEnvironment.id);
    ok(await app.gql(DESTROY_ENV, { id: ids[0] }, { as: t.owner }));
    ok(await app.gql(`mutation($org: ID!) { inviteMember(organizationId: $org, input: { email: "impact-invitee@example.com", roleKey: "viewer" }) { token } }`, { org: t.org.id }, { as: t.owner }));

    const impact = async () => ok(await app.gql<{ organization: { deletionImpact: Record<string, unknown> } }>(IMPACT, { id: t.org.id }, { as: t.owner })).organization.deletionImpact;
    expect(await impact()).toEqual({ workspaces: 2, environments: 3, activeEnvironments: 2, members: 3, pendingInvitations: 1, apiKeys: 0, secrets: 0, blockers: ['ACTIVE_ENVIRONMENTS'] });
    for (const id of ids.slice(1)) ok(await app.gql(DESTROY_ENV, { id }, { as: t.owner }));
    expect(await impact()).toMatchObject({ environments: 3, activeEnvironments: 0, blockers: [] });
    // Secrets of the organization and of its workspaces count (they go with it).
    ok(await app.gql(`mutation($org: ID!) { setSecret(organizationId: $org, key: "IMPACT_A", value: "v") { key } }`, { org: t.org.id }, { as: t.owner }));
    ok(await app.gql(`mutation($org: ID!) { setSecret(organizationId: $org, key: "IMPACT_B", value: "v") { key } }`, { org: t.org.id }, { as: t.owner }));
    expect(await impact()).toMatchObject({ secrets: 2 });

    for (const as of [t.admin, t.member]) {
      const result = await app.gql<{ organization: { id: string; deletionImpact: unknown } }>(IMPACT, { id: t.org.id }, { as });
      expect(result.data?.organization).toEqual({ id: t.org.id, deletionImpact: null });
      expect(result.errors?.map((e) => [e.path, e.extensions?.code])).toEqual([[['organization', 'deletionImpact'], 'FORBIDDEN']]);
    }
  });
});

describe('deleteOrganization and the subscription', () => {
  const CHANGE_PLAN = `mutation($org: ID!, $plan: PlanKey!) { changePlan(organizationId: $org, plan: $plan) { status plan { key } } }`;
  const CANCEL = `mutation($org: ID!, $atPeriodEnd: Boolean) { cancelSubscription(organizationId: $org, atPeriodEnd: $atPeriodEnd) { status } }`;
  const BLOCKERS = `query($id: ID!) { organization(id: $id) { deletionImpact { blockers } } }`;
  const blockers = async (t: Team) => ok(await app.gql<{ organization: { deletionImpact: { blockers: string[] } } }>(BLOCKERS, { id: t.org.id }, { as: t.owner })).organization.deletionImpact.blockers;

  it('is PRECONDITION_FAILED (ACTIVE_SUBSCRIPTION) on a paid plan ACTIVE or PAST_DUE; once cancelled (CANCELLING) it succeeds', async () => {
    const t = await team('paid');
    expect(ok(await app.gql(CHANGE_PLAN, { org: t.org.id, plan: 'STARTER' }, { as: t.owner })).changePlan).toEqual({ status: 'ACTIVE', plan: { key: 'STARTER' } });
    const active = await del(t, t.owner);
    expect(codes(active)).toEqual(['PRECONDITION_FAILED']);
    expect(active.errors![0]!.extensions!.reason).toBe('ACTIVE_SUBSCRIPTION');
    expect(await blockers(t)).toEqual(['ACTIVE_SUBSCRIPTION']);
    // As a payment provider's webhook would leave it.
    await withAllRows(app, (runner) => runner.query(`UPDATE subscriptions SET status = 'PAST_DUE' WHERE organization_id = $1`, [t.org.id]));
    expect((await del(t, t.owner)).errors![0]!.extensions!.reason).toBe('ACTIVE_SUBSCRIPTION');
    await withAllRows(app, (runner) => runner.query(`UPDATE subscriptions SET status = 'ACTIVE' WHERE organization_id = $1`, [t.org.id]));
    expect(await eventCount(t.org.id, 'organization.deleted')).toBe(0);

    expect(ok(await app.gql(CANCEL, { org: t.org.id, atPeriodEnd: true }, { as: t.owner })).cancelSubscription.status).toBe('CANCELLING');
    expect(await blockers(t)).toEqual([]);
    expect(ok(await del(t, t.owner)).deleteOrganization.status).toBe('DELETED');
  });

  it('is not blocked by a trial, the FREE plan or an EXPIRED subscription (deleting a read-only organization is allowed)', async () => {
    const free = await team('free');
    ok(await app.gql(CHANGE_PLAN, { org: free.org.id, plan: 'FREE' }, { as: free.owner }));
    expect(ok(await del(free, free.owner)).deleteOrganization.status).toBe('DELETED');
    const expired = await team('expired-sub');
    ok(await app.gql(CHANGE_PLAN, { org: expired.org.id, plan: 'BUSINESS' }, { as: expired.owner }));
    expect(ok(await app.gql(CANCEL, { org: expired.org.id, atPeriodEnd: false }, { as: expired.owner })).cancelSubscription.status).toBe('EXPIRED');
    expect(ok(await del(expired, expired.owner)).deleteOrganization.status).toBe('DELETED');
  });
});

describe('a deleted organization', () => {
  let t: Team;
  let deleted: OrgView;
  let other: CreatedOrganization;
  let otherOwner: string;

  beforeAll(async () => {
    t = await team('deleted');
    otherOwner = uniqueEmail('other-owner');
    other = await createOrganization(app, otherOwner);
    deleted = ok(await del(t, t.owner)).deleteOrganization;
  });

  it('is DELETED, inactive, with deletedAt and purgeAt = deletedAt + RETENTION_DAYS (30) days', async () => {
    expect(deleted).toMatchObject({ id: t.org.id, status: 'DELETED', isActive: false });
    expect(deleted.deletedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Date.parse(deleted.purgeAt!) - Date.parse(deleted.deletedAt!)).toBe(30 * 24 * 3600 * 1000);
    expect(Math.abs(Date.parse(deleted.deletedAt!) - Date.now())).toBeLessThan(60_000);
  });

  it('writes one organization.deleted event (status ACTIVE → DELETED, the purge date in metadata)', async () => {
    const events = await readAll<{ actor_type: string; actor_email: string; changes: any; metadata: any }>(
      app,
      `SELECT actor_type, actor_email, changes, metadata FROM audit_events WHERE organization_id = $1 AND action = 'organization.deleted'`,
      [t.org.id],
    );
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      actor_type: 'USER',
      actor_email: t.owner,
      changes: { changedFields: ['status'], oldValues: { status: 'ACTIVE' }, newValues: { status: 'DELETED' } },
      metadata: { slug: t.org.slug, purgeAt: deleted.purgeAt, retentionDays: 30 },
    });
  });

  it('is NOT_FOUND to its members and gone from their lists; its owner still sees it, with status DELETED', async () => {
    for (const as of [t.admin, t.member]) {
      const get = await app.gql(GET, { id: t.org.id }, { as });
      expect(codes(get)).toEqual(['NOT_FOUND']);
      expect(get.data?.organization).toBeNull();
      expect(codes(await app.gql(`query($slug: String!) { organization(slug: $slug) { id } }`, { slug: t.org.slug }, { as }))).toEqual(['NOT_FOUND']);
      const lists = ok(await app.gql<{ organizations: { nodes: Array<{ id: string }> }; me: { memberships: Array<{ organization: { id: string } }> } }>(LIST, {}, { as }));
      expect(lists.organizations.nodes.map((o) => o.id)).not.toContain(t.org.id);
      expect(lists.me.memberships.map((m) => m.organization.id)).not.toContain(t.org.id);
      // Restoring is the owner's: to anyone else the organization does not exist.
      expect(codes(await restore(t, as))).toEqual(['NOT_FOUND']);
    }
    expect(ok(await app.gql<{ organization: OrgView }>(GET, { id: t.org.id }, { as: t.owner })).organization).toMatchObject({ status: 'DELETED', isActive: false });
    const lists = ok(await app.gql<{ organizations: { nodes: Array<{ id: string; status: string }> } }>(LIST, {}, { as: t.owner }));
    expect(lists.organizations.nodes).toContainEqual({ id: t.org.id, status: 'DELETED' });
  });

  it('is read-only for its owner: every mutation but restoreOrganization is ORGANIZATION_INACTIVE (status DELETED), after input errors', async () => {
    const memberId = ok(await app.gql<{ me: { user: { id: string } } }>(`{ me { user { id } } }`, {}, { as: t.member })).me.user.id;
    const attempts: Array<[string, Record<string, unknown>]> = [
      [`mutation($id: ID!) { updateOrganization(id: $id, input: { name: "Zombie" }) { id } }`, { id: t.org.id }],
      [`mutation($id: ID!) { createWorkspace(organizationId: $id, input: { name: "After death" }) { id } }`, { id: t.org.id }],
      [`mutation($ws: ID!) { updateWorkspace(id: $ws, input: { name: "Renamed" }) { id } }`, { ws: t.org.defaultWorkspaceId }],
      [CREATE_ENV, { ws: t.org.defaultWorkspaceId, name: 'ghost' }],
      [`mutation($id: ID!) { inviteMember(organizationId: $id, input: { email: "late@example.com", roleKey: "viewer" }) { token } }`, { id: t.org.id }],
      [`mutation($id: ID!, $user: ID!) { removeMember(organizationId: $id, userId: $user) }`, { id: t.org.id, user: memberId }],
      [`mutation($id: ID!) { changePlan(organizationId: $id, plan: BUSINESS) { status } }`, { id: t.org.id }],
      [`mutation($id: ID!) { setFeatureFlag(organizationId: $id, key: "late.flag", enabled: true) { key } }`, { id: t.org.id }],
      [DELETE, { id: t.org.id, slug: t.org.slug }],
    ];
    for (const [document, variables] of attempts) {
      const result = await app.gql(document, variables, { as: t.owner });
      expect([document, codes(result)]).toEqual([document, ['ORGANIZATION_INACTIVE']]);
      expect(result.errors![0]!.extensions!.status).toBe('DELETED');
    }
    // SPEC §6: BAD_USER_INPUT comes before ORGANIZATION_INACTIVE.
    expect(codes(await del(t, t.owner, 'wrong'))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await app.gql(`mutation($id: ID!) { updateOrganization(id: $id, input: { name: "" }) { id } }`, { id: t.org.id }, { as: t.owner }))).toEqual(['BAD_USER_INPUT']);
    const [row] = await readAll<{ name: string; workspaces: number; members: number }>(
      app,
      `SELECT o.name, (SELECT count(*)::int FROM workspaces w WHERE w.organization_id = o.id) AS workspaces,
              (SELECT count(*)::int FROM memberships m WHERE m.organization_id = o.id) AS members FROM organizations o WHERE o.id = $1`,
      [t.org.id],
    );
    expect(row).toMatchObject({ workspaces: 1, members: 3 });
    expect(row!.name).not.toBe('Zombie');
    expect(await eventCount(t.org.id, 'organization.deleted')).toBe(1);
  });

  it('keeps its slug reserved: another organization cannot take it (CONFLICT)', async () => {
    const created = await app.gql(`mutation($slug: String!) { createOrganization(input: { name: "Squatter", slug: $slug }) { id } }`, { slug: t.org.slug }, { as: otherOwner });
    expect(codes(created)).toEqual(['CONFLICT']);
    expect(created.errors![0]!.message).toBe(`Organization with slug '${t.org.slug}' already exists`);
    expect(codes(await app.gql(`mutation($id: ID!, $slug: String!) { changeOrganizationSlug(id: $id, slug: $slug) { id } }`, { id: other.id, slug: t.org.slug }, { as: otherOwner }))).toEqual(['CONFLICT']);
  });
});

describe('restoreOrganization', () => {
  it('brings the organization back before purgeAt (ACTIVE, no deletedAt or purgeAt), visible to its members again, audited', async () => {
    const t = await team('restore');
    ok(await del(t, t.owner));
    const restored = ok(await restore(t, t.owner)).restoreOrganization;
    expect(restored).toEqual({ id: t.org.id, slug: t.org.slug, status: 'ACTIVE', isActive: true, deletedAt: null, purgeAt: null });
    expect(ok(await app.gql<{ organization: OrgView }>(GET, { id: t.org.id }, { as: t.member })).organization.status).toBe('ACTIVE');
    const events = await readAll<{ actor_email: string; changes: any }>(
      app,
      `SELECT actor_email, changes FROM audit_events WHERE organization_id = $1 AND action = 'organization.restored'`,
      [t.org.id],
    );
    expect(events).toEqual([{ actor_email: t.owner, changes: { changedFields: ['status'], oldValues: { status: 'DELETED' }, newValues: { status: 'ACTIVE' } } }]);
    // It can be deleted again (and restored again).
    expect(ok(await del(t, t.owner)).deleteOrganization.status).toBe('DELETED');
    expect(await eventCount(t.org.id, 'organization.deleted')).toBe(2);
  });

  it('is PRECONDITION_FAILED (ORGANIZATION_NOT_DELETED) for an organization that is not deleted, and FORBIDDEN to an admin', async () => {
    const t = await team('not-deleted');
    const result = await restore(t, t.owner);
    expect(codes(result)).toEqual(['PRECONDITION_FAILED']);
    expect(result.errors![0]!.extensions!.reason).toBe('ORGANIZATION_NOT_DELETED');
    expect(codes(await restore(t, t.admin))).toEqual(['FORBIDDEN']);
    expect(await eventCount(t.org.id, 'organization.restored')).toBe(0);
  });

  it('is PRECONDITION_FAILED (RETENTION_EXPIRED) once purgeAt has passed, and the organization stays deleted', async () => {
    const t = await team('expired');
    ok(await del(t, t.owner));
    await setPurgeAt(t.org.id, `now() - interval '1 second'`);
    const result = await restore(t, t.owner);
    expect(codes(result)).toEqual(['PRECONDITION_FAILED']);
    expect(result.errors![0]!.extensions!.reason).toBe('RETENTION_EXPIRED');
    expect(await statusOf(t.org.id)).toBe('DELETED');
    expect(await eventCount(t.org.id, 'organization.restored')).toBe(0);
    // Before its due time it restores again: the comparison is with the database's now().
    await setPurgeAt(t.org.id, `now() + interval '1 minute'`);
    expect(ok(await restore(t, t.owner)).restoreOrganization.status).toBe('ACTIVE');
  });
});
