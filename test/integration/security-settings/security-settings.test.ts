import { codes, type GqlResult, ok, startTestApp, type TestApp } from '../../helpers/app';
import { withAllRows } from '../../helpers/db';
import { addMember, createOrganization, type CreatedOrganization, setFeatureFlag, uniqueEmail } from '../../helpers/factories';

/**
 * The organization's security settings enforced (SPEC §2) for queries, nested fields and
 * mutations inside it: requireMfa → MFA_REQUIRED, sessionTimeoutMinutes → SESSION_EXPIRED,
 * ipAllowlist (plan feature ip_allowlist) → IP_NOT_ALLOWED, X-Forwarded-For only from
 * TRUSTED_PROXIES (IPv4 and IPv6), the lock-out guard, and the precedence of SPEC §6.
 */

const GET = `query($id: ID!) { organization(id: $id) { id name } }`;
const MEMBERS = `query($id: ID!) { organization(id: $id) { id members(first: 5) { totalCount } } }`;
const WORKSPACE = `query($id: ID!) { workspace(id: $id) { id name } }`;
const CREATE_WS = `mutation($org: ID!, $name: String!) { createWorkspace(organizationId: $org, input: { name: $name }) { id } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateOrganizationInput!) { updateOrganization(id: $id, input: $input) { id security { requireMfa sessionTimeoutMinutes ipAllowlist } } }`;
const ME = `{ me { user { email } } }`;

interface Team {
  org: CreatedOrganization;
  owner: string;
  admin: string;
  member: string;
  outsider: string;
}

async function team(app: TestApp, label: string): Promise<Team> {
  const owner = uniqueEmail(`${label}-owner`);
  const org = await createOrganization(app, owner);
  const admin = uniqueEmail(`${label}-admin`);
  const member = uniqueEmail(`${label}-member`);
  await addMember(app, org.id, admin, 'admin');
  await addMember(app, org.id, member, 'member');
  const outsider = uniqueEmail(`${label}-outsider`);
  ok(await app.gql(ME, {}, { as: outsider }));
  return { org, owner, admin, member, outsider };
}

/** Writes settings straight to the row (what the API's own lock-out guard would refuse from here). */
const forceSecurity = (app: TestApp, organizationId: string, patch: Record<string, unknown>) =>
  withAllRows(app, (runner) => runner.query(`UPDATE organizations SET security = security || $2::jsonb WHERE id = $1`, [organizationId, JSON.stringify(patch)]));

const onlyCode = (result: GqlResult): string => {
  expect(codes(result)).toHaveLength(1);
  return codes(result)[0]!;
};

describe('requireMfa and sessionTimeoutMinutes (no trusted proxies)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app.close();
  });

  it('requireMfa: single-factor tokens get MFA_REQUIRED for queries, nested fields and mutations inside the organization; MFA tokens pass', async () => {
    const t = await team(app, 'mfa');
    const ownerMfa = await app.token(t.owner, { mfa: true });
    const memberMfa = await app.token(t.member, { mfa: true });
    ok(await app.gql(UPDATE, { id: t.org.id, input: { security: { requireMfa: true } } }, { token: ownerMfa }));

    for (const as of [t.owner, t.member]) {
      expect(onlyCode(await app.gql(GET, { id: t.org.id }, { as }))).toBe('MFA_REQUIRED');
      expect(onlyCode(await app.gql(WORKSPACE, { id: t.org.defaultWorkspaceId }, { as }))).toBe('MFA_REQUIRED');
    }
    expect(onlyCode(await app.gql(CREATE_WS, { org: t.org.id, name: 'Refused' }, { as: t.owner }))).toBe('MFA_REQUIRED');
    // The list of one's organizations leaves out those the token may not enter (their contents would show through it).
    const listed = ok(await app.gql(`{ organizations(first: 10) { totalCount nodes { id members(first: 1) { totalCount } } } }`, {}, { as: t.owner }));
    expect(listed.organizations).toEqual({ totalCount: 0, nodes: [] });
    expect(ok(await app.gql(ME, {}, { as: t.member })).me.user.email).toBe(t.member);

    expect(ok(await app.gql(GET, { id: t.org.id }, { token: memberMfa })).organization.id).toBe(t.org.id);
    expect(ok(await app.gql(MEMBERS, { id: t.org.id }, { token: ownerMfa })).organization.members.totalCount).toBe(3);
    ok(await app.gql(CREATE_WS, { org: t.org.id, name: 'Allowed' }, { token: ownerMfa }));

    // Another organization of the same user without the setting is unaffected.
    const other = await createOrganization(app, t.member);
    expect(ok(await app.gql(GET, { id: other.id }, { as: t.member })).organization.id).toBe(other.id);
  });

  it('precedence: NOT_FOUND and FORBIDDEN and BAD_USER_INPUT come before MFA_REQUIRED, MFA_REQUIRED before ORGANIZATION_INACTIVE', async () => {
    const t = await team(app, 'mfa-order');
    ok(await app.gql(UPDATE, { id: t.org.id, input: { security: { requireMfa: true } } }, { token: await app.token(t.owner, { mfa: true }) }));
    expect(onlyCode(await app.gql(GET, { id: t.org.id }, { as: t.outsider }))).toBe('NOT_FOUND');
    expect(onlyCode(await app.gql(UPDATE, { id: t.org.id, input: { name: 'x' } }, { as: t.member }))).toBe('FORBIDDEN');
    expect(onlyCode(await app.gql(UPDATE, { id: t.org.id, input: { name: '' } }, { as: t.admin }))).toBe('BAD_USER_INPUT');
    expect(onlyCode(await app.gql(UPDATE, { id: t.org.id, input: { name: 'Fine name' } }, { as: t.admin }))).toBe('MFA_REQUIRED');
    await withAllRows(app, (runner) => runner.query(`UPDATE subscriptions SET status = 'SUSPENDED' WHERE organization_id = $1`, [t.org.id]));
    expect(onlyCode(await app.gql(CREATE_WS, { org: t.org.id, name: 'Later' }, { as: t.owner }))).toBe('MFA_REQUIRED');
    expect(onlyCode(await app.gql(CREATE_WS, { org: t.org.id, name: 'Later' }, { token: await app.token(t.owner, { mfa: true }) }))).toBe('ORGANIZATION_INACTIVE');
  });

  it('sessionTimeoutMinutes: a token whose auth_time is older gets SESSION_EXPIRED inside the organization only', async () => {
    const t = await team(app, 'timeout');
    ok(await app.gql(UPDATE, { id: t.org.id, input: { security: { sessionTimeoutMinutes: 5 } } }, { as: t.owner }));
    const stale = await app.token(t.member, { authenticatedSecondsAgo: 6 * 60 });
    const fresh = await app.token(t.member, { authenticatedSecondsAgo: 4 * 60 });
    expect(onlyCode(await app.gql(GET, { id: t.org.id }, { token: stale }))).toBe('SESSION_EXPIRED');
    expect(onlyCode(await app.gql(WORKSPACE, { id: t.org.defaultWorkspaceId }, { token: stale }))).toBe('SESSION_EXPIRED');
    expect(onlyCode(await app.gql(CREATE_WS, { org: t.org.id, name: 'Stale' }, { token: await app.token(t.owner, { authenticatedSecondsAgo: 6 * 60 }) }))).toBe('SESSION_EXPIRED');
    expect(ok(await app.gql(GET, { id: t.org.id }, { token: fresh })).organization.id).toBe(t.org.id);
    expect(ok(await app.gql(ME, {}, { token: stale })).me.user.email).toBe(t.member);
    // The default (480 minutes) elsewhere: the same stale token works in another organization.
    const other = await createOrganization(app, t.member);
    expect(ok(await app.gql(GET, { id: other.id }, { token: stale })).organization.id).toBe(other.id);
    // MFA_REQUIRED precedes SESSION_EXPIRED.
    ok(await app.gql(UPDATE, { id: t.org.id, input: { security: { requireMfa: true } } }, { token: await app.token(t.owner, { mfa: true }) }));
    expect(onlyCode(await app.gql(GET, { id: t.org.id }, { token: stale }))).toBe('MFA_REQUIRED');
    expect(onlyCode(await app.gql(GET, { id: t.org.id }, { token: await app.token(t.member, { mfa: true, authenticatedSecondsAgo: 6 * 60 }) }))).toBe('SESSION_EXPIRED');
  });

  it('without TRUSTED_PROXIES, X-Forwarded-For is ignored: the socket address decides', async () => {
    const t = await team(app, 'untrusted');
    await setFeatureFlag(app, t.org.id, 'ip_allowlist', true, t.owner);
    // Only 127.0.0.1: a forged header naming an outside address changes nothing…
    ok(await app.gql(UPDATE, { id: t.org.id, input: { security: { ipAllowlist: ['127.0.0.1/32'] } } }, { as: t.owner }));
    expect(ok(await app.gql(GET, { id: t.org.id }, { as: t.member, headers: { 'x-forwarded-for': '198.51.100.7' } })).organization.id).toBe(t.org.id);
    // …and a header naming an allowed address does not let 127.0.0.1 in.
    await forceSecurity(app, t.org.id, { ipAllowlist: ['203.0.113.0/24'] });
    expect(onlyCode(await app.gql(GET, { id: t.org.id }, { as: t.member, headers: { 'x-forwarded-for': '203.0.113.9' } }))).toBe('IP_NOT_ALLOWED');
    expect(onlyCode(await app.gql(CREATE_WS, { org: t.org.id, name: 'Nope' }, { as: t.owner }))).toBe('IP_NOT_ALLOWED');
    // The lock-out guard judges the same address: the header does not make 203.0.113.0/24 acceptable.
    const guarded = await app.gql(UPDATE, { id: t.org.id, input: { security: { ipAllowlist: ['203.0.113.0/24'] } } }, { as: t.owner, headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect(onlyCode(guarded)).toBe('BAD_USER_INPUT');
    expect(guarded.errors![0]!.extensions!.field).toBe('ipAllowlist');
    // The allowlist is a plan feature: switched off, it is not enforced.
    await forceSecurity(app, t.org.id, { ipAllowlist: ['127.0.0.1/32'] });
    await setFeatureFlag(app, t.org.id, 'ip_allowlist', false, t.owner);
    await forceSecurity(app, t.org.id, { ipAllowlist: ['203.0.113.0/24'] });
    expect(ok(await app.gql(GET, { id: t.org.id }, { as: t.member })).organization.id).toBe(t.org.id);
  });
});

describe('ipAllowlist behind a trusted proxy (TRUSTED_PROXIES=127.0.0.1/32)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ env: { TRUSTED_PROXIES: '127.0.0.1/32,::1/128' } });
  });
  afterAll(async () => {
    await app.close();
  });

  const from = (address: string) => ({ 'x-forwarded-for': address });

  it('IPv4: addresses in the allowlist pass, others get IP_NOT_ALLOWED (queries, nested fields, mutations)', async () => {
    const t = await team(app, 'v4');
    await setFeatureFlag(app, t.org.id, 'ip_allowlist', true, t.owner);
    ok(await app.gql(UPDATE, { id: t.org.id, input: { security: { ipAllowlist: ['203.0.113.0/24'] } } }, { as: t.owner, headers: from('203.0.113.9') }));
    expect(ok(await app.gql(MEMBERS, { id: t.org.id }, { as: t.member, headers: from('203.0.113.200') })).organization.members.totalCount).toBe(3);
    ok(await app.gql(CREATE_WS, { org: t.org.id, name: 'From office' }, { as: t.owner, headers: from('203.0.113.1') }));
    expect(onlyCode(await app.gql(GET, { id: t.org.id }, { as: t.member, headers: from('198.51.100.7') }))).toBe('IP_NOT_ALLOWED');
    expect(onlyCode(await app.gql(GET, { id: t.org.id }, { as: t.member }))).toBe('IP_NOT_ALLOWED');
    expect(onlyCode(await app.gql(WORKSPACE, { id: t.org.defaultWorkspaceId }, { as: t.member, headers: from('198.51.100.7') }))).toBe('IP_NOT_ALLOWED');
    expect(onlyCode(await app.gql(CREATE_WS, { org: t.org.id, name: 'From home' }, { as: t.owner, headers: from('198.51.100.7') }))).toBe('IP_NOT_ALLOWED');
    // The right-most untrusted hop is the client: a forged left-most entry changes nothing.
    expect(onlyCode(await app.gql(GET, { id: t.org.id }, { as: t.member, headers: from('203.0.113.9, 198.51.100.7') }))).toBe('IP_NOT_ALLOWED');
    // Outside the organization nothing changes.
    expect(ok(await app.gql(ME, {}, { as: t.member, headers: from('198.51.100.7') })).me.user.email).toBe(t.member);
    // Precedence: NOT_FOUND, FORBIDDEN and BAD_USER_INPUT first; MFA_REQUIRED before IP_NOT_ALLOWED.
    expect(onlyCode(await app.gql(GET, { id: t.org.id }, { as: t.outsider, headers: from('198.51.100.7') }))).toBe('NOT_FOUND');
    expect(onlyCode(await app.gql(UPDATE, { id: t.org.id, input: { name: 'x' } }, { as: t.member, headers: from('198.51.100.7') }))).toBe('FORBIDDEN');
    expect(onlyCode(await app.gql(UPDATE, { id: t.org.id, input: { name: '' } }, { as: t.admin, headers: from('198.51.100.7') }))).toBe('BAD_USER_INPUT');
    ok(await app.gql(UPDATE, { id: t.org.id, input: { security: { requireMfa: true } } }, { token: await app.token(t.owner, { mfa: true }), headers: from('203.0.113.9') }));
    expect(onlyCode(await app.gql(GET, { id: t.org.id }, { as: t.member, headers: from('198.51.100.7') }))).toBe('MFA_REQUIRED');
    expect(onlyCode(await app.gql(GET, { id: t.org.id }, { token: await app.token(t.member, { mfa: true }), headers: from('198.51.100.7') }))).toBe('IP_NOT_ALLOWED');
  });

  it('IPv6: CIDRs of either family; the lock-out guard refuses a list without the caller', async () => {
    const t = await team(app, 'v6');
    await setFeatureFlag(app, t.org.id, 'ip_allowlist', true, t.owner);
    const refused = await app.gql(UPDATE, { id: t.org.id, input: { security: { ipAllowlist: ['203.0.113.0/24'] } } }, { as: t.owner, headers: from('2001:db8::5') });
    expect(onlyCode(refused)).toBe('BAD_USER_INPUT');
    expect(refused.errors![0]!.extensions!.field).toBe('ipAllowlist');
    // Nothing was stored: still open to everyone.
    expect(ok(await app.gql(GET, { id: t.org.id }, { as: t.member, headers: from('198.51.100.7') })).organization.id).toBe(t.org.id);

    const set = ok(await app.gql(UPDATE, { id: t.org.id, input: { security: { ipAllowlist: ['2001:db8::/32', '203.0.113.0/24'] } } }, { as: t.owner, headers: from('2001:db8::5') }));
    expect(set.updateOrganization.security.ipAllowlist).toEqual(['2001:db8::/32', '203.0.113.0/24']);
    expect(ok(await app.gql(GET, { id: t.org.id }, { as: t.member, headers: from('2001:db8:ffff::1') })).organization.id).toBe(t.org.id);
    expect(ok(await app.gql(GET, { id: t.org.id }, { as: t.member, headers: from('203.0.113.4') })).organization.id).toBe(t.org.id);
    expect(onlyCode(await app.gql(GET, { id: t.org.id }, { as: t.member, headers: from('2001:db9::1') }))).toBe('IP_NOT_ALLOWED');
    expect(onlyCode(await app.gql(GET, { id: t.org.id }, { as: t.member, headers: from('::1') }))).toBe('IP_NOT_ALLOWED');
    // IPv4-mapped IPv6 counts as IPv4.
    expect(ok(await app.gql(GET, { id: t.org.id }, { as: t.member, headers: from('::ffff:203.0.113.77') })).organization.id).toBe(t.org.id);
  });
});
