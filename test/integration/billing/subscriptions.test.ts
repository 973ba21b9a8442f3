import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll } from '../../helpers/db';
import { concurrently, outcomes, PARALLEL, RACE_NOTE, ROUNDS } from '../../helpers/races';
import { addMember, createOrganization, uniqueEmail } from '../../helpers/factories';
import { CANCEL, CHANGE_PLAN, ORG_BILLING, RESUME, setSubscription, subscriptionEvents, subscriptionRow } from './billing-helpers';

/** Subscriptions through the API (SPEC §5, Billing): the start, plan changes, cancellation, read-only organizations, the federation entity. */

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

const DAY = 24 * 3600 * 1000;
const billing = async (organizationId: string, as: string) => ok(await app.gql(ORG_BILLING, { id: organizationId }, { as })).organization;
const featureKeys = async (organizationId: string, as: string): Promise<string[]> =>
  ok(await app.gql(`query($id: ID!) { organization(id: $id) { features { key enabled } } }`, { id: organizationId }, { as }))
    .organization.features.filter((f: { enabled: boolean }) => f.enabled)
    .map((f: { key: string }) => f.key)
    .sort();

describe('a new organization', () => {
  it('starts TRIALING on PRO for TRIAL_DAYS (the trial is its first period), ACTIVE, with only organization.created audited', async () => {
    const owner = uniqueEmail('trial');
    const before = Date.now();
    const org = await createOrganization(app, owner);
    const o = await billing(org.id, owner);
    expect(o.status).toBe('ACTIVE');
    expect(o.isActive).toBe(true);
    const s = o.subscription;
    expect(s).toMatchObject({
      status: 'TRIALING',
      billingInterval: 'MONTHLY',
      plan: { key: 'PRO', monthlyPriceCents: 7900, annualPriceCents: 75840 },
      scheduledPlan: null,
      cancelAtPeriodEnd: false,
      cancelledAt: null,
      autoRenew: true,
      effectiveLimits: { maxMembers: 50, maxWorkspaces: 10 },
      organization: { id: org.id },
    });
    const trialEnd = Date.parse(s.trialEndsAt);
    expect(trialEnd).toBeGreaterThanOrEqual(before + 14 * DAY - 5000);
    expect(trialEnd).toBeLessThanOrEqual(Date.now() + 14 * DAY + 5000);
    expect(s.currentPeriodEnd).toBe(s.trialEndsAt);
    expect(await subscriptionEvents(app, org.id)).toEqual([]);
    // The trial plan decides the features: PRO has custom_roles, not restricted_workspaces.
    expect(await featureKeys(org.id, owner)).toEqual(['audit_log_export', 'custom_roles']);
  });

  it('the seeded default organization has its subscription too', async () => {
    const rows = await readAll(app, `SELECT s.status, s.plan_key FROM subscriptions s JOIN organizations o ON o.id = s.organization_id WHERE o.slug = 'default'`);
    expect(rows).toEqual([{ status: 'TRIALING', plan_key: 'PRO' }]);
  });

  it('shows the subscription with org.billing.view only: a member gets null with FORBIDDEN, a stranger NOT_FOUND', async () => {
    const owner = uniqueEmail('owner');
    const member = uniqueEmail('member');
    const admin = uniqueEmail('admin');
    const org = await createOrganization(app, owner);
    await addMember(app, org.id, member, 'member');
    await addMember(app, org.id, admin, 'admin');
    expect((await billing(org.id, admin)).subscription.plan.key).toBe('PRO');
    const asMember = await app.gql(ORG_BILLING, { id: org.id }, { as: member });
    expect(asMember.data!.organization.subscription).toBeNull();
    expect(asMember.data!.organization.status).toBe('ACTIVE');
    expect(codes(asMember)).toEqual(['FORBIDDEN']);
    expect(asMember.errors![0]!.path).toEqual(['organization', 'subscription']);
    // Billing changes need org.billing.manage, which an admin lacks.
    expect(codes(await app.gql(CHANGE_PLAN, { org: org.id, plan: 'BUSINESS' }, { as: admin }))).toEqual(['FORBIDDEN']);
    expect(codes(await app.gql(CANCEL, { org: org.id }, { as: member }))).toEqual(['FORBIDDEN']);
    expect(codes(await app.gql(CHANGE_PLAN, { org: org.id, plan: 'BUSINESS' }, { as: uniqueEmail('stranger') }))).toEqual(['NOT_FOUND']);
    expect(await subscriptionEvents(app, org.id)).toEqual([]);
  });
});

describe('changePlan', () => {
  it('from TRIALING applies at once, even a cheaper plan (ACTIVE, new period from now); an upgrade applies at once; a downgrade is scheduled', async () => {
    const owner = uniqueEmail('plans');
    const org = await createOrganization(app, owner);
    const started = Date.now();
    const starter = ok(await app.gql(CHANGE_PLAN, { org: org.id, plan: 'STARTER' }, { as: owner })).changePlan;
    expect(starter).toMatchObject({ status: 'ACTIVE', plan: { key: 'STARTER' }, scheduledPlan: null, billingInterval: 'MONTHLY' });
    expect(Date.parse(starter.currentPeriodStart)).toBeGreaterThanOrEqual(started - 5000);
    // The trial ended when the plan was chosen.
    expect(Date.parse(starter.trialEndsAt)).toBeLessThanOrEqual(Date.now() + 5000);
    expect(await featureKeys(org.id, owner)).toEqual(['audit_log_export']);
    // A gated operation follows the plan at once: custom roles need PRO.
    const role = await app.gql(`mutation($org: ID!) { createRole(organizationId: $org, input: { key: "ops", name: "Ops", permissions: ["org.view"] }) { id } }`, { org: org.id }, { as: owner });
    expect(codes(role)).toEqual(['FEATURE_DISABLED']);

    const business = ok(await app.gql(CHANGE_PLAN, { org: org.id, plan: 'BUSINESS', interval: 'ANNUAL' }, { as: owner })).changePlan;
    expect(business).toMatchObject({ status: 'ACTIVE', plan: { key: 'BUSINESS' }, billingInterval: 'ANNUAL', scheduledPlan: null });
    expect(Date.parse(business.currentPeriodEnd) - Date.parse(business.currentPeriodStart)).toBeGreaterThanOrEqual(365 * DAY);
    expect(await featureKeys(org.id, owner)).toEqual(['audit_log_export', 'custom_roles', 'ip_allowlist', 'restricted_workspaces']);

    const downgrade = ok(await app.gql(CHANGE_PLAN, { org: org.id, plan: 'PRO' }, { as: owner })).changePlan;
    expect(downgrade).toMatchObject({ status: 'ACTIVE', plan: { key: 'BUSINESS' }, scheduledPlan: { key: 'PRO' }, currentPeriodEnd: business.currentPeriodEnd });

    const events = await subscriptionEvents(app, org.id);
    expect(events.map((e) => [e.action, e.actor_type])).toEqual([
      ['subscription.plan_changed', 'USER'],
      ['subscription.plan_changed', 'USER'],
      ['subscription.downgrade_scheduled', 'USER'],
    ]);
    expect(events[0]!.changes).toEqual({ changedFields: ['plan', 'status'], oldValues: { plan: 'PRO', status: 'TRIALING' }, newValues: { plan: 'STARTER', status: 'ACTIVE' } });
    expect(events[2]!.changes).toEqual({ changedFields: ['scheduledPlan'], oldValues: { scheduledPlan: null }, newValues: { scheduledPlan: 'PRO' } });
    // An upgrade drops the pending downgrade.
    const again = ok(await app.gql(CHANGE_PLAN, { org: org.id, plan: 'ENTERPRISE' }, { as: owner })).changePlan;
    expect(again).toMatchObject({ plan: { key: 'ENTERPRISE' }, scheduledPlan: null, effectiveLimits: { maxMembers: null } });
  });

  it('is refused when current usage exceeds the target plan (the quota checker): PRECONDITION_FAILED, USAGE_EXCEEDS_PLAN with the resource; nothing changes', async () => {
    const owner = uniqueEmail('usage');
    const org = await createOrganization(app, owner);
    ok(await app.gql(`mutation($org: ID!) { createWorkspace(organizationId: $org, input: { name: "Second" }) { id } }`, { org: org.id }, { as: owner }));
    const refused = await app.gql(CHANGE_PLAN, { org: org.id, plan: 'FREE' }, { as: owner });
    expect(codes(refused)).toEqual(['PRECONDITION_FAILED']);
    expect(refused.errors![0]!.extensions).toMatchObject({ reason: 'USAGE_EXCEEDS_PLAN', resource: 'WORKSPACES' });
    expect((await subscriptionRow(app, org.id)).plan_key).toBe('PRO');
    expect(await subscriptionEvents(app, org.id)).toEqual([]);
    // A plan with room is fine.
    expect(ok(await app.gql(CHANGE_PLAN, { org: org.id, plan: 'STARTER' }, { as: owner })).changePlan.plan.key).toBe('STARTER');
    // Members (pending invitations included) count too: FREE allows 3.
    for (const email of [uniqueEmail('i1'), uniqueEmail('i2'), uniqueEmail('i3')]) {
      ok(await app.gql(`mutation($org: ID!, $email: String!) { inviteMember(organizationId: $org, input: { email: $email, roleKey: "viewer" }) { token } }`, { org: org.id, email }, { as: owner }));
    }
    ok(await app.gql(`mutation($id: ID!) { deleteWorkspace(id: $id) }`, { id: (await readAll(app, `SELECT id FROM workspaces WHERE organization_id = $1 AND NOT is_default`, [org.id]))[0]!.id }, { as: owner }));
    const members = await app.gql(CHANGE_PLAN, { org: org.id, plan: 'FREE' }, { as: owner });
    expect(members.errors![0]!.extensions).toMatchObject({ code: 'PRECONDITION_FAILED', reason: 'USAGE_EXCEEDS_PLAN', resource: 'MEMBERS' });
  });
});

describe('cancelSubscription and resumeSubscription', () => {
  it('at the period end: CANCELLING until then; resume brings it back; each step audited', async () => {
    const owner = uniqueEmail('cancel');
    const org = await createOrganization(app, owner);
    ok(await app.gql(CHANGE_PLAN, { org: org.id, plan: 'STARTER' }, { as: owner }));
    const cancelling = ok(await app.gql(CANCEL, { org: org.id }, { as: owner })).cancelSubscription;
    expect(cancelling).toMatchObject({ status: 'CANCELLING', cancelAtPeriodEnd: true, autoRenew: false, plan: { key: 'STARTER' } });
    expect(cancelling.cancelledAt).not.toBeNull();
    // Still writable while cancelling (read-only comes with EXPIRED).
    ok(await app.gql(`mutation($id: ID!) { updateOrganization(id: $id, input: { description: "still here" }) { id } }`, { id: org.id }, { as: owner }));
    const noPlanChange = await app.gql(CHANGE_PLAN, { org: org.id, plan: 'PRO' }, { as: owner });
    expect(noPlanChange.errors![0]!.extensions).toMatchObject({ code: 'PRECONDITION_FAILED', reason: 'SUBSCRIPTION_CANCELLING' });
    expect(codes(await app.gql(CANCEL, { org: org.id }, { as: owner }))).toEqual(['PRECONDITION_FAILED']);

    const resumed = ok(await app.gql(RESUME, { org: org.id }, { as: owner })).resumeSubscription;
    expect(resumed).toMatchObject({ status: 'ACTIVE', cancelAtPeriodEnd: false, cancelledAt: null, autoRenew: true });
    const again = await app.gql(RESUME, { org: org.id }, { as: owner });
    expect(again.errors![0]!.extensions).toMatchObject({ code: 'PRECONDITION_FAILED', reason: 'SUBSCRIPTION_NOT_CANCELLING' });
    const events = await subscriptionEvents(app, org.id);
    expect(events.map((e) => e.action)).toEqual(['subscription.plan_changed', 'subscription.cancelled', 'subscription.resumed']);
    expect(events[1]!.metadata).toEqual({ atPeriodEnd: true });
    expect(events[2]!.changes!.newValues).toMatchObject({ status: 'ACTIVE', cancelAtPeriodEnd: false });
  });

  it('a cancelled trial resumes as a trial', async () => {
    const owner = uniqueEmail('trialcancel');
    const org = await createOrganization(app, owner);
    expect(ok(await app.gql(CANCEL, { org: org.id }, { as: owner })).cancelSubscription.status).toBe('CANCELLING');
    expect(ok(await app.gql(RESUME, { org: org.id }, { as: owner })).resumeSubscription).toMatchObject({ status: 'TRIALING', plan: { key: 'PRO' } });
  });

  it('at once (atPeriodEnd false): EXPIRED; the organization stays ACTIVE in status but is read-only except billing, deletion and member removal', async () => {
    const owner = uniqueEmail('expire');
    const viewer = uniqueEmail('viewer');
    const org = await createOrganization(app, owner);
    const viewerId = await addMember(app, org.id, viewer, 'viewer');
    const leaving = uniqueEmail('leaving');
    const leavingId = await addMember(app, org.id, leaving, 'member');
    // Things to act on later, made while writable: a custom role (PRO), an invitation, an environment.
    const role = ok(await app.gql(`mutation($org: ID!) { createRole(organizationId: $org, input: { key: "ops", name: "Ops", permissions: ["org.view"] }) { id } }`, { org: org.id }, { as: owner })).createRole;
    const invitation = ok(
      await app.gql(`mutation($org: ID!) { inviteMember(organizationId: $org, input: { email: "later@example.com", roleKey: "viewer" }) { invitation { id } } }`, { org: org.id }, { as: owner }),
    ).inviteMember.invitation;
    const env = ok(
      await app.gql(
        `mutation($ws: ID!) { createEnvironment(workspaceId: $ws, input: { name: "Dev", tier: DEV, resources: { cpu: 0.5, ramMb: 512, diskGb: 5 } }) { id } }`,
        { ws: org.defaultWorkspaceId },
        { as: owner },
      ),
    ).createEnvironment;

    const invitee = uniqueEmail('invitee');
    const ticket = ok(
      await app.gql(`mutation($org: ID!, $email: String!) { inviteMember(organizationId: $org, input: { email: $email, roleKey: "viewer" }) { token } }`, { org: org.id, email: invitee }, { as: owner }),
    ).inviteMember;
    const ACCEPT = `mutation($token: String!) { acceptInvitation(token: $token) { id } }`;

    const expired = ok(await app.gql(CANCEL, { org: org.id, atPeriodEnd: false }, { as: owner })).cancelSubscription;
    expect(expired).toMatchObject({ status: 'EXPIRED', cancelAtPeriodEnd: false, autoRenew: false });
    const o = await billing(org.id, owner);
    expect([o.status, o.isActive]).toEqual(['ACTIVE', true]);
    const row = await subscriptionRow(app, org.id);
    expect(new Date(row.archive_at).getTime() - new Date(row.expired_at).getTime()).toBe(30 * DAY);

    const inactive = async (query: string, variables: Record<string, unknown>, as = owner) => {
      const result = await app.gql(query, variables, { as });
      expect(codes(result)).toEqual(['ORGANIZATION_INACTIVE']);
      expect(result.errors![0]!.extensions).toMatchObject({ status: 'EXPIRED' });
    };
    // One of each guard kind: organization, workspace, environment, role, invitation.
    await inactive(`mutation($id: ID!) { updateOrganization(id: $id, input: { description: "x" }) { id } }`, { id: org.id });
    await inactive(`mutation($org: ID!) { createWorkspace(organizationId: $org, input: { name: "W" }) { id } }`, { org: org.id });
    await inactive(`mutation($org: ID!) { setFeatureFlag(organizationId: $org, key: "beta.x", enabled: true) { key } }`, { org: org.id });
    await inactive(`mutation($org: ID!) { inviteMember(organizationId: $org, input: { email: "n@example.com", roleKey: "viewer" }) { token } }`, { org: org.id });
    await inactive(`mutation($org: ID!, $u: ID!) { updateMemberRole(organizationId: $org, userId: $u, roleKey: "member") { id } }`, { org: org.id, u: viewerId });
    await inactive(`mutation($id: ID!) { updateWorkspace(id: $id, input: { name: "Renamed" }) { id } }`, { id: org.defaultWorkspaceId });
    await inactive(
      `mutation($ws: ID!) { createEnvironment(workspaceId: $ws, input: { name: "Two", tier: DEV, resources: { cpu: 0.5, ramMb: 512, diskGb: 5 } }) { id } }`,
      { ws: org.defaultWorkspaceId },
    );
    await inactive(`mutation($id: ID!) { updateEnvironment(id: $id, input: { name: "Renamed" }) { id } }`, { id: env.id });
    await inactive(`mutation($id: ID!) { destroyEnvironment(id: $id) { id } }`, { id: env.id });
    await inactive(`mutation($id: ID!) { updateRole(id: $id, input: { name: "Ops 2" }) { id } }`, { id: role.id });
    await inactive(`mutation($id: ID!) { revokeInvitation(id: $id) { id } }`, { id: invitation.id });
    // Joining is a write too: an invitation cannot be accepted meanwhile (it stays PENDING).
    await inactive(ACCEPT, { token: ticket.token }, invitee);
    expect((await readAll(app, `SELECT status FROM invitations WHERE organization_id = $1 AND email = $2`, [org.id, invitee]))[0]!.status).toBe('PENDING');

    // SPEC §6 order: NOT_FOUND, FORBIDDEN and BAD_USER_INPUT come first; ORGANIZATION_INACTIVE before FEATURE_DISABLED.
    expect(codes(await app.gql(`mutation($id: ID!) { updateOrganization(id: $id, input: { description: "x" }) { id } }`, { id: org.id }, { as: uniqueEmail('x') }))).toEqual(['NOT_FOUND']);
    expect(codes(await app.gql(`mutation($org: ID!) { createWorkspace(organizationId: $org, input: { name: "W" }) { id } }`, { org: org.id }, { as: viewer }))).toEqual(['FORBIDDEN']);
    expect(codes(await app.gql(`mutation($org: ID!) { createWorkspace(organizationId: $org, input: { name: "  " }) { id } }`, { org: org.id }, { as: owner }))).toEqual(['BAD_USER_INPUT']);
    // RESTRICTED needs restricted_workspaces, which PRO lacks: still ORGANIZATION_INACTIVE first.
    await inactive(`mutation($org: ID!) { createWorkspace(organizationId: $org, input: { name: "R", visibility: RESTRICTED }) { id } }`, { org: org.id });

    // Allowed: member removal (and leaving), reading.
    expect(ok(await app.gql(`mutation($org: ID!, $u: ID!) { removeMember(organizationId: $org, userId: $u) }`, { org: org.id, u: viewerId }, { as: owner })).removeMember).toBe(true);
    expect(ok(await app.gql(`mutation($org: ID!) { leaveOrganization(organizationId: $org) }`, { org: org.id }, { as: leaving })).leaveOrganization).toBe(true);
    expect(leavingId).toBeTruthy();
    expect((await billing(org.id, owner)).subscription.status).toBe('EXPIRED');

    // Billing: choosing a plan from EXPIRED applies at once and the organization is writable again.
    const back = ok(await app.gql(CHANGE_PLAN, { org: org.id, plan: 'PRO' }, { as: owner })).changePlan;
    expect(back).toMatchObject({ status: 'ACTIVE', plan: { key: 'PRO' }, cancelledAt: null, autoRenew: true });
    ok(await app.gql(`mutation($id: ID!) { updateOrganization(id: $id, input: { description: "back" }) { id } }`, { id: org.id }, { as: owner }));
    ok(await app.gql(ACCEPT, { token: ticket.token }, { as: invitee }));
    expect((await subscriptionEvents(app, org.id)).map((e) => e.action)).toEqual(['subscription.cancelled', 'subscription.plan_changed']);
    // Exactly the failed mutations wrote nothing: no audit event of theirs exists.
    const failed = await readAll(
      app,
      `SELECT action FROM audit_events WHERE organization_id = $1 AND action IN ('workspace.created', 'member.invited', 'role.updated', 'environment.destroyed', 'feature.toggled', 'member.joined') ORDER BY occurred_at`,
      [org.id],
    );
    expect(failed.map((r) => r.action)).toEqual(['member.invited', 'member.invited', 'member.joined']);
  });

  it('a SUSPENDED subscription makes the organization SUSPENDED (isActive false) and read-only the same way', async () => {
    const owner = uniqueEmail('suspended');
    const org = await createOrganization(app, owner);
    await setSubscription(app, org.id, `status = 'SUSPENDED'`);
    const o = await billing(org.id, owner);
    expect([o.status, o.isActive, o.subscription.status]).toEqual(['SUSPENDED', false, 'SUSPENDED']);
    const result = await app.gql(`mutation($org: ID!) { createWorkspace(organizationId: $org, input: { name: "W" }) { id } }`, { org: org.id }, { as: owner });
    expect(codes(result)).toEqual(['ORGANIZATION_INACTIVE']);
    expect(result.errors![0]!.extensions).toMatchObject({ status: 'SUSPENDED' });
    // Billing stays possible: cancelling works.
    expect(ok(await app.gql(CANCEL, { org: org.id }, { as: owner })).cancelSubscription.status).toBe('CANCELLING');
  });
});

describe('concurrent billing mutations', () => {
  it(`${PARALLEL} parallel cancellations of one subscription: exactly one succeeds, one audit event ${RACE_NOTE}`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const owner = uniqueEmail('race');
      const org = await createOrganization(app, owner);
      const results = await concurrently(PARALLEL, () => app.gql(CANCEL, { org: org.id }, { as: owner }));
      expect(outcomes(results)).toEqual({ ok: 1, '200:PRECONDITION_FAILED': PARALLEL - 1 });
      expect((await subscriptionEvents(app, org.id)).map((e) => e.action)).toEqual(['subscription.cancelled']);
    }
  });

  it(`${PARALLEL} parallel plan changes end in one serial chain of plan_changed events ${RACE_NOTE}`, async () => {
    const owner = uniqueEmail('race-plan');
    const org = await createOrganization(app, owner);
    ok(await app.gql(CHANGE_PLAN, { org: org.id, plan: 'STARTER' }, { as: owner }));
    const plans = ['PRO', 'BUSINESS', 'ENTERPRISE'];
    const results = await concurrently(PARALLEL, (i) => app.gql(CHANGE_PLAN, { org: org.id, plan: plans[i % 3] }, { as: owner }));
    expect(results.every((r) => !r.errors)).toBe(true);
    // Each event's old plan is the previous one's new plan: no change was made on a stale read.
    const events = (await subscriptionEvents(app, org.id)).slice(1);
    expect(events).toHaveLength(PARALLEL);
    let plan: unknown = 'STARTER';
    for (const e of events) {
      if (e.action === 'subscription.plan_changed') {
        expect(e.metadata!.previousPlan).toBe(plan);
        plan = e.metadata!.plan;
      } else {
        expect(e.action).toBe('subscription.downgrade_scheduled');
      }
    }
  });
});

describe('Subscription as a federation entity', () => {
  const ENTITIES = `query($r: [_Any!]!) { _entities(representations: $r) { __typename ... on Subscription { id status plan { key } organization { id } } } }`;

  it('has @key(fields: "id") and resolves references with org.billing.view; another tenant’s (or without the permission) is null with NOT_FOUND', async () => {
    const sdl = ok(await app.gql(`{ _service { sdl } }`))._service.sdl as string;
    expect(sdl).toMatch(/type Subscription\s+@key\(fields: "id"\)/);
    const owner = uniqueEmail('fed');
    const member = uniqueEmail('fedmember');
    const mine = await createOrganization(app, owner);
    await addMember(app, mine.id, member, 'member');
    const theirs = await createOrganization(app, uniqueEmail('other'));
    const myId = (await subscriptionRow(app, mine.id)).id;
    const theirId = (await subscriptionRow(app, theirs.id)).id;
    const refs = [myId, theirId, '00000000-0000-0000-0000-000000000000', 'not-a-uuid'].map((id) => ({ __typename: 'Subscription', id }));
    const result = await app.gql(ENTITIES, { r: refs }, { as: owner });
    expect(result.data!._entities).toEqual([{ __typename: 'Subscription', id: myId, status: 'TRIALING', plan: { key: 'PRO' }, organization: { id: mine.id } }, null, null, null]);
    expect(codes(result)).toEqual(['NOT_FOUND', 'NOT_FOUND', 'NOT_FOUND']);
    const asMember = await app.gql(ENTITIES, { r: [refs[0]] }, { as: member });
    expect(asMember.data!._entities).toEqual([null]);
    expect(codes(asMember)).toEqual(['NOT_FOUND']);
  });
});
