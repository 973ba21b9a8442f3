import { codes, ok } from '../../helpers/app';
import { readAll, withAllRows } from '../../helpers/db';
import { uniqueEmail } from '../../helpers/factories';
import { ACCEPT, createOrg, DECLINE, errorOf, invite, type InvitationApp, PREVIEW, RESEND, REVOKE, startInvitationApp, type Ticket } from './invitation-helpers';

/** What invitations show, to whom (SPEC §5, §3): the preview by token, the organization's list, the viewer's own. */
let t: InvitationApp;
let owner: string;
let viewer: string;
let org: string;
let otherOwner: string;
let otherOrg: string;
const issued: string[] = [];

const remember = (ticket: Ticket): Ticket => {
  issued.push(ticket.token);
  return ticket;
};

beforeAll(async () => {
  t = await startInvitationApp();
  owner = uniqueEmail('read-owner');
  org = await createOrg(t, owner, 'Reading Room');
  viewer = uniqueEmail('read-viewer');
  ok(await t.as(viewer, ACCEPT, { token: remember(await invite(t, owner, org, viewer, 'viewer')).token }));
  otherOwner = uniqueEmail('read-other');
  otherOrg = await createOrg(t, otherOwner, 'Other Place');
});
afterAll(async () => {
  await t?.app.close();
});

describe('invitation(token) without login', () => {
  it("shows the organization's name, the email, the role, the status and the expiry, and nothing else", async () => {
    const email = uniqueEmail('read-guest');
    const ticket = remember(await invite(t, owner, org, email, 'member'));
    const preview = ok(await t.as(null, PREVIEW, { token: ticket.token })).invitation;
    expect(preview).toEqual({
      id: ticket.invitation.id,
      email,
      status: 'PENDING',
      expiresAt: ticket.invitation.expiresAt,
      role: { key: 'member', name: 'Member' },
      organization: { name: 'Reading Room' },
      invitedBy: null,
    });
    for (const field of ['id', 'slug', 'description', 'status', 'createdAt', 'memberCount', 'workspaceCount', 'owner { id }', 'viewerPermissions', 'viewerRole { key }', 'workspaces { totalCount }', 'settings { timezone }', 'members { totalCount }', 'invitations { totalCount }', 'auditEvents { nodes { id } }']) {
      const result = await t.as(null, `query($token: String!) { invitation(token: $token) { organization { name ${field} } } }`, { token: ticket.token });
      expect([field, codes(result)]).toEqual([field, ['FORBIDDEN']]);
      // Null (nullable field) or no invitation at all (non-null field): either way only the name shows.
      const shown = result.data?.invitation?.organization ?? {};
      expect(Object.entries(shown).filter(([key, value]) => key !== 'name' && value !== null)).toEqual([]);
    }
    // The invitee (logged in, not a member yet) sees the same preview; a member of the organization the whole of it.
    expect(codes(await t.as(email, `query($token: String!) { invitation(token: $token) { organization { slug } } }`, { token: ticket.token }))).toEqual(['FORBIDDEN']);
    const full = ok(await t.as(owner, `query($token: String!) { invitation(token: $token) { organization { slug memberCount } } }`, { token: ticket.token }));
    expect(full.invitation.organization.memberCount).toBe(2);
  });

  it('shows the status as it is: ACCEPTED, REVOKED, DECLINED, EXPIRED', async () => {
    const tickets = await Promise.all(['a', 'r', 'd', 'e'].map(async (s) => ({ s, email: uniqueEmail(`read-${s}`) })));
    const [a, r, d, e] = await Promise.all(tickets.map(async ({ email }) => ({ email, ticket: remember(await invite(t, owner, org, email)) })));
    ok(await t.as(a!.email, ACCEPT, { token: a!.ticket.token }));
    ok(await t.as(owner, REVOKE, { id: r!.ticket.invitation.id }));
    ok(await t.as(d!.email, DECLINE, { token: d!.ticket.token }));
    await withAllRows(t.app, (runner) => runner.query(`UPDATE invitations SET expires_at = now() - interval '1 minute' WHERE id = $1`, [e!.ticket.invitation.id]));
    const statuses = await Promise.all([a, r, d, e].map(async (x) => ok(await t.as(null, PREVIEW, { token: x!.ticket.token })).invitation.status));
    expect(statuses).toEqual(['ACCEPTED', 'REVOKED', 'DECLINED', 'EXPIRED']);
  });
});

describe('Organization.invitations', () => {
  it('lists newest first with keyset pagination, filters by status, counts; needs org.members.invite (null with FORBIDDEN otherwise)', async () => {
    const fresh = await createOrg(t, owner, 'Listing Org');
    const tickets: Ticket[] = [];
    for (let i = 0; i < 5; i++) tickets.push(remember(await invite(t, owner, fresh, uniqueEmail(`list-${i}`))));
    ok(await t.as(owner, REVOKE, { id: tickets[1]!.invitation.id }));
    await withAllRows(t.app, (r) => r.query(`UPDATE invitations SET expires_at = now() - interval '1 minute' WHERE id = $1`, [tickets[2]!.invitation.id]));
    const list = `query($id: ID!, $status: InvitationStatus, $after: String) { organization(id: $id) { invitations(status: $status, first: 2, after: $after) {
      totalCount nodes { id status } pageInfo { hasNextPage endCursor } } } }`;
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: any = ok(await t.as(owner, list, { id: fresh, after })).organization.invitations;
      expect(page.totalCount).toBe(5);
      seen.push(...page.nodes.map((n: { id: string }) => n.id));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(seen).toEqual(tickets.map((x) => x.invitation.id).reverse());
    const byStatus = async (status: string) => ok(await t.as(owner, list, { id: fresh, status })).organization.invitations;
    expect((await byStatus('PENDING')).totalCount).toBe(3);
    expect((await byStatus('REVOKED')).nodes).toEqual([{ id: tickets[1]!.invitation.id, status: 'REVOKED' }]);
    expect((await byStatus('EXPIRED')).nodes).toEqual([{ id: tickets[2]!.invitation.id, status: 'EXPIRED' }]);
    expect(errorOf(await t.as(owner, list, { id: fresh, after: 'garbage' }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
  });

  it('is null with FORBIDDEN for a viewer, while sibling fields resolve', async () => {
    const result = await t.as(viewer, `query($id: ID!) { organization(id: $id) { name invitations { totalCount } } }`, { id: org });
    expect(codes(result)).toEqual(['FORBIDDEN']);
    expect(result.data!.organization).toEqual({ name: 'Reading Room', invitations: null });
  });

  it('gives each organization of a list its own invitations (the nested list goes through the page loader)', async () => {
    const a = await createOrg(t, owner, 'Batch A');
    const b = await createOrg(t, owner, 'Batch B');
    remember(await invite(t, owner, a, uniqueEmail('batch-a')));
    remember(await invite(t, owner, b, uniqueEmail('batch-b')));
    const result = ok(await t.as(owner, `{ me { organizations(first: 50) { nodes { id invitations(first: 5) { nodes { email } } } } } }`));
    const byId = new Map(result.me.organizations.nodes.map((o: { id: string; invitations: { nodes: unknown[] } }) => [o.id, o.invitations.nodes.length]));
    expect([byId.get(a), byId.get(b)]).toEqual([1, 1]);
  });
});

describe('me.pendingInvitations', () => {
  it('lists the PENDING, unexpired invitations addressed to the verified email, in every organization, with the preview only', async () => {
    const email = uniqueEmail('read-many');
    const here = remember(await invite(t, owner, org, email, 'viewer'));
    const there = remember(await invite(t, otherOwner, otherOrg, email, 'member'));
    const old = remember(await invite(t, owner, await createOrg(t, owner, 'Old Org'), email));
    await withAllRows(t.app, (r) => r.query(`UPDATE invitations SET expires_at = now() - interval '1 minute' WHERE id = $1`, [old.invitation.id]));
    const revokedOrg = await createOrg(t, otherOwner, 'Revoked Org');
    const revoked = remember(await invite(t, otherOwner, revokedOrg, email));
    ok(await t.as(otherOwner, REVOKE, { id: revoked.invitation.id }));
    const query = `{ me { pendingInvitations { id email status role { key } organization { name } } } }`;
    const listed = ok(await t.as(email, query)).me.pendingInvitations;
    expect(listed).toEqual(
      expect.arrayContaining([
        { id: here.invitation.id, email, status: 'PENDING', role: { key: 'viewer' }, organization: { name: 'Reading Room' } },
        { id: there.invitation.id, email, status: 'PENDING', role: { key: 'member' }, organization: { name: 'Other Place' } },
      ]),
    );
    expect(listed).toHaveLength(2);
    expect(codes(await t.as(email, `{ me { pendingInvitations { organization { id } } } }`))).toContain('FORBIDDEN');
    // Nobody else sees them; an unverified email sees none.
    expect(ok(await t.as(uniqueEmail('read-nobody'), query)).me.pendingInvitations).toEqual([]);
    expect(ok(await t.as(email, query, {}, { verified: false })).me.pendingInvitations).toEqual([]);
    expect(codes(await t.as(null, query))).toEqual(['UNAUTHENTICATED']);
  });
});

describe('isolation: another organization', () => {
  it("answers its invitation ids NOT_FOUND exactly like random or malformed ones, and never lists its invitations", async () => {
    const theirs = remember(await invite(t, otherOwner, otherOrg, uniqueEmail('iso')));
    const { randomUUID } = await import('node:crypto');
    for (const document of [REVOKE, RESEND]) {
      const answers = await Promise.all([theirs.invitation.id, randomUUID(), 'not-a-uuid'].map(async (id) => errorOf(await t.as(owner, document, { id }))));
      expect(answers).toEqual(Array(3).fill({ code: 'NOT_FOUND', reason: undefined, field: undefined, message: 'Invitation not found' }));
    }
    expect(codes(await t.as(owner, `query($id: ID!) { organization(id: $id) { invitations { totalCount } } }`, { id: otherOrg }))).toEqual(['NOT_FOUND']);
    expect((await readAll(t.app, `SELECT status FROM invitations WHERE id = $1`, [theirs.invitation.id]))[0]!.status).toBe('PENDING');
  });

  it('answers a token that no longer names an invitation (replaced by a resend) NOT_FOUND exactly like a random one', async () => {
    const email = uniqueEmail('iso-token');
    const first = await invite(t, otherOwner, otherOrg, email);
    remember(first);
    remember(ok(await t.as(otherOwner, RESEND, { id: first.invitation.id })).resendInvitation);
    const { randomBytes } = await import('node:crypto');
    const stale = errorOf(await t.as(email, ACCEPT, { token: first.token }));
    const random = errorOf(await t.as(email, ACCEPT, { token: randomBytes(32).toString('base64url') }));
    expect(stale).toEqual(random);
    expect(stale.code).toBe('NOT_FOUND');
  });
});

describe('tokens never leave the ticket', () => {
  it('appear in no audit event, outbox row, error message or log line', async () => {
    expect(issued.length).toBeGreaterThan(10);
    const audit = JSON.stringify(await readAll(t.app, `SELECT * FROM audit_events`));
    const outbox = JSON.stringify(await readAll(t.app, `SELECT * FROM email_outbox`));
    const log = t.logLines.join('\n');
    expect(t.logLines.length).toBeGreaterThan(10);
    for (const token of issued) {
      expect(audit.includes(token)).toBe(false);
      expect(outbox.includes(token)).toBe(false);
      expect(log.includes(token)).toBe(false);
    }
    // An error about a token does not echo it.
    const token = issued[0]!;
    const result = await t.as(uniqueEmail('echo'), ACCEPT, { token });
    expect(JSON.stringify(result.errors)).not.toContain(token);
  });
});
