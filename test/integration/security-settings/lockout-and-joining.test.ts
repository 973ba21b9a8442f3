import { codes, type GqlResult, ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll, withAllRows } from '../../helpers/db';
import { addMember, createOrganization, setFeatureFlag, uniqueEmail } from '../../helpers/factories';

/**
 * The security settings' remaining edges (SPEC §2, §6): the lock-out guards for requireMfa and
 * sessionTimeoutMinutes (like the IP allowlist's), and the mutations guarded only by
 * authentication that act inside an organization (leaveOrganization, acceptInvitation).
 */

const UPDATE = `mutation($id: ID!, $input: UpdateOrganizationInput!) { updateOrganization(id: $id, input: $input) { id security { requireMfa sessionTimeoutMinutes ipAllowlist } } }`;
const SECURITY = `query($id: ID!) { organization(id: $id) { security { requireMfa sessionTimeoutMinutes } } }`;
const LEAVE = `mutation($id: ID!) { leaveOrganization(organizationId: $id) }`;
const INVITE = `mutation($org: ID!, $email: String!) { inviteMember(organizationId: $org, input: { email: $email, roleKey: "member" }) { token invitation { id } } }`;
const ACCEPT = `mutation($token: String!) { acceptInvitation(token: $token) { role { key } } }`;

const onlyCode = (result: GqlResult): string => {
  expect(codes(result)).toHaveLength(1);
  return codes(result)[0]!;
};

const updatedEvents = async (app: TestApp, organizationId: string): Promise<number> =>
  Number((await readAll(app, `SELECT count(*)::int AS n FROM audit_events WHERE organization_id = $1 AND action = 'organization.updated'`, [organizationId]))[0]!.n);

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ env: { TRUSTED_PROXIES: '127.0.0.1/32,::1/128' } });
});
afterAll(async () => {
  await app?.close();
});

describe('lock-out guards', () => {
  it('requiring MFA from a single-factor token is BAD_USER_INPUT (field security.requireMfa) and changes nothing; from an MFA token it applies', async () => {
    const owner = uniqueEmail('mfa-guard');
    const org = await createOrganization(app, owner);
    const refused = await app.gql(UPDATE, { id: org.id, input: { security: { requireMfa: true } } }, { as: owner });
    expect(onlyCode(refused)).toBe('BAD_USER_INPUT');
    expect(refused.errors![0]!.extensions!.field).toBe('security.requireMfa');
    expect(ok(await app.gql(SECURITY, { id: org.id }, { as: owner })).organization.security.requireMfa).toBe(false);
    expect(await updatedEvents(app, org.id)).toBe(0);
    // Switching it off, or leaving it alone, needs no MFA.
    ok(await app.gql(UPDATE, { id: org.id, input: { security: { requireMfa: false } } }, { as: owner }));
    const mfa = await app.token(owner, { mfa: true });
    expect(ok(await app.gql(UPDATE, { id: org.id, input: { security: { requireMfa: true } } }, { token: mfa })).updateOrganization.security.requireMfa).toBe(true);
  });

  it('a sessionTimeoutMinutes the caller\'s own session already exceeds is BAD_USER_INPUT (field security.sessionTimeoutMinutes); a longer one applies', async () => {
    const owner = uniqueEmail('timeout-guard');
    const org = await createOrganization(app, owner);
    const signedIn20MinutesAgo = await app.token(owner, { authenticatedSecondsAgo: 20 * 60 });
    const refused = await app.gql(UPDATE, { id: org.id, input: { security: { sessionTimeoutMinutes: 10 } } }, { token: signedIn20MinutesAgo });
    expect(onlyCode(refused)).toBe('BAD_USER_INPUT');
    expect(refused.errors![0]!.extensions!.field).toBe('security.sessionTimeoutMinutes');
    expect(ok(await app.gql(SECURITY, { id: org.id }, { as: owner })).organization.security.sessionTimeoutMinutes).toBe(480);
    expect(await updatedEvents(app, org.id)).toBe(0);
    expect(ok(await app.gql(UPDATE, { id: org.id, input: { security: { sessionTimeoutMinutes: 30 } } }, { token: signedIn20MinutesAgo })).updateOrganization.security.sessionTimeoutMinutes).toBe(30);
  });

  it('IPv4-mapped IPv6 client addresses are matched as IPv4 by the allowlist, both ways', async () => {
    const owner = uniqueEmail('mapped');
    const member = uniqueEmail('mapped-member');
    const org = await createOrganization(app, owner);
    await addMember(app, org.id, member, 'member');
    await setFeatureFlag(app, org.id, 'ip_allowlist', true, owner);
    ok(await app.gql(UPDATE, { id: org.id, input: { security: { ipAllowlist: ['203.0.113.0/24'] } } }, { as: owner, headers: { 'x-forwarded-for': '::ffff:203.0.113.5' } }));
    expect(ok(await app.gql(SECURITY, { id: org.id }, { as: owner, headers: { 'x-forwarded-for': '::ffff:203.0.113.200' } })).organization.security).toBeDefined();
    expect(onlyCode(await app.gql(SECURITY, { id: org.id }, { as: owner, headers: { 'x-forwarded-for': '::ffff:198.51.100.7' } }))).toBe('IP_NOT_ALLOWED');
    // Leaving is acting inside the organization: refused from outside the allowlist too.
    expect(onlyCode(await app.gql(LEAVE, { id: org.id }, { as: member, headers: { 'x-forwarded-for': '198.51.100.7' } }))).toBe('IP_NOT_ALLOWED');
    expect(ok(await app.gql(LEAVE, { id: org.id }, { as: member, headers: { 'x-forwarded-for': '203.0.113.8' } })).leaveOrganization).toBe(true);
  });
});

describe('mutations guarded by authentication only, acting inside an organization', () => {
  it('leaveOrganization meets the organization\'s requireMfa (MFA_REQUIRED, still a member); with MFA the member leaves', async () => {
    const owner = uniqueEmail('leave-owner');
    const member = uniqueEmail('leave-member');
    const org = await createOrganization(app, owner);
    await addMember(app, org.id, member, 'member');
    ok(await app.gql(UPDATE, { id: org.id, input: { security: { requireMfa: true } } }, { token: await app.token(owner, { mfa: true }) }));
    expect(onlyCode(await app.gql(LEAVE, { id: org.id }, { as: member }))).toBe('MFA_REQUIRED');
    expect(await readAll(app, `SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.organization_id = $1 AND u.email = $2`, [org.id, member])).toHaveLength(1);
    // NOT_FOUND still comes first for someone who is no member.
    expect(onlyCode(await app.gql(LEAVE, { id: org.id }, { as: uniqueEmail('stranger') }))).toBe('NOT_FOUND');
    expect(ok(await app.gql(LEAVE, { id: org.id }, { token: await app.token(member, { mfa: true }) })).leaveOrganization).toBe(true);
  });

  it('acceptInvitation into an organization requiring MFA: MFA_REQUIRED for a single-factor token (invitation still PENDING, no membership); accepted with MFA', async () => {
    const owner = uniqueEmail('invite-owner');
    const invitee = uniqueEmail('invitee');
    const org = await createOrganization(app, owner);
    const ownerMfa = await app.token(owner, { mfa: true });
    ok(await app.gql(UPDATE, { id: org.id, input: { security: { requireMfa: true } } }, { token: ownerMfa }));
    const { inviteMember } = ok(await app.gql(INVITE, { org: org.id, email: invitee }, { token: ownerMfa }));
    expect(onlyCode(await app.gql(ACCEPT, { token: inviteMember.token }, { as: invitee }))).toBe('MFA_REQUIRED');
    expect((await readAll(app, `SELECT status FROM invitations WHERE id = $1`, [inviteMember.invitation.id]))[0]!.status).toBe('PENDING');
    expect(await readAll(app, `SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.organization_id = $1 AND u.email = $2`, [org.id, invitee])).toEqual([]);
    expect(ok(await app.gql(ACCEPT, { token: inviteMember.token }, { token: await app.token(invitee, { mfa: true }) })).acceptInvitation.role.key).toBe('member');
  });
});

describe('lists of one\'s organizations', () => {
  const LIST = `{ organizations(first: 20) { totalCount nodes { id workspaces { nodes { id } } } } me { memberships { organization { id } } } }`;
  const ids = (data: any): { listed: string[]; memberships: string[]; total: number } => ({
    listed: data.organizations.nodes.map((o: { id: string }) => o.id).sort(),
    memberships: data.me.memberships.map((m: { organization: { id: string } }) => m.organization.id).sort(),
    total: data.organizations.totalCount,
  });

  it('leave out the organizations whose requireMfa, sessionTimeoutMinutes or ipAllowlist the token fails, and show them to a token that passes', async () => {
    const user = uniqueEmail('lists');
    const open = await createOrganization(app, user);
    const mfaOrg = await createOrganization(app, user);
    const shortSession = await createOrganization(app, user);
    const fenced = await createOrganization(app, user);
    const mfa = await app.token(user, { mfa: true });
    ok(await app.gql(UPDATE, { id: mfaOrg.id, input: { security: { requireMfa: true } } }, { token: mfa }));
    ok(await app.gql(UPDATE, { id: shortSession.id, input: { security: { sessionTimeoutMinutes: 10 } } }, { as: user }));
    await setFeatureFlag(app, fenced.id, 'ip_allowlist', true, user);
    ok(await app.gql(UPDATE, { id: fenced.id, input: { security: { ipAllowlist: ['203.0.113.0/24'] } } }, { as: user, headers: { 'x-forwarded-for': '203.0.113.1' } }));

    const stale = await app.token(user, { authenticatedSecondsAgo: 20 * 60 });
    const singleFactorOutside = ids(ok(await app.gql(LIST, {}, { token: stale, headers: { 'x-forwarded-for': '198.51.100.7' } })));
    expect(singleFactorOutside).toEqual({ listed: [open.id], memberships: [open.id], total: 1 });
    // By id, each says why.
    expect(onlyCode(await app.gql(`query($id: ID!) { organization(id: $id) { id } }`, { id: mfaOrg.id }, { token: stale }))).toBe('MFA_REQUIRED');
    expect(onlyCode(await app.gql(`query($id: ID!) { organization(id: $id) { id } }`, { id: shortSession.id }, { token: stale }))).toBe('SESSION_EXPIRED');
    expect(onlyCode(await app.gql(`query($id: ID!) { organization(id: $id) { id } }`, { id: fenced.id }, { token: stale, headers: { 'x-forwarded-for': '198.51.100.7' } }))).toBe('IP_NOT_ALLOWED');

    // The default session timeout (480 minutes) holds in every organization that did not change it.
    const nineHours = await app.token(user, { mfa: true, authenticatedSecondsAgo: 9 * 3600 });
    expect(ids(ok(await app.gql(LIST, {}, { token: nineHours, headers: { 'x-forwarded-for': '203.0.113.9' } })))).toEqual({ listed: [], memberships: [], total: 0 });

    const passing = ids(ok(await app.gql(LIST, {}, { token: mfa, headers: { 'x-forwarded-for': '203.0.113.9' } })));
    expect(passing).toEqual({ listed: [open.id, mfaOrg.id, shortSession.id, fenced.id].sort(), memberships: [open.id, mfaOrg.id, shortSession.id, fenced.id].sort(), total: 4 });
  });

  it('a session timeout of t minutes leaves an organization out from an age of t × 60 + 1 seconds on; settings without one follow the default (480 minutes)', async () => {
    const user = uniqueEmail('timeouts');
    const five = await createOrganization(app, user);
    const unset = await createOrganization(app, user);
    ok(await app.gql(UPDATE, { id: five.id, input: { security: { sessionTimeoutMinutes: 5 } } }, { as: user }));
    // Settings stored before sessionTimeoutMinutes existed: the key absent.
    await withAllRows(app, (runner) => runner.query(`UPDATE organizations SET security = security - 'sessionTimeoutMinutes' WHERE id = $1`, [unset.id]));
    const listed = async (secondsAgo: number) => ids(ok(await app.gql(LIST, {}, { token: await app.token(user, { authenticatedSecondsAgo: secondsAgo }) }))).listed;
    expect(await listed(5 * 60 - 20)).toEqual([five.id, unset.id].sort());
    // One second past the timeout (the age only grows while the request travels).
    expect(await listed(5 * 60 + 1)).toEqual([unset.id]);
    expect(await listed(479 * 60)).toEqual([unset.id]);
    expect(await listed(480 * 60 + 1)).toEqual([]);
    expect(onlyCode(await app.gql(`query($id: ID!) { organization(id: $id) { id } }`, { id: unset.id }, { token: await app.token(user, { authenticatedSecondsAgo: 480 * 60 + 1 }) }))).toBe('SESSION_EXPIRED');
  });
});
