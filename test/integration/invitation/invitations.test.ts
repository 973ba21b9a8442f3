import { codes, ok } from '../../helpers/app';
import { readAll, withAllRows } from '../../helpers/db';
import { uniqueEmail } from '../../helpers/factories';
import {
  ACCEPT,
  auditCount,
  createOrg,
  DECLINE,
  errorOf,
  INVITE,
  invite,
  type InvitationApp,
  memberCount,
  PREVIEW,
  RESEND,
  REVOKE,
  startInvitationApp,
  storedInvitation,
  userId,
} from './invitation-helpers';

/** Invitations end to end (SPEC §5): every rule with its exact code, reason and field. */
let t: InvitationApp;
let owner: string;
let admin: string;
let member: string;
let org: string;

const DAY = 24 * 3600 * 1000;

beforeAll(async () => {
  t = await startInvitationApp();
  owner = uniqueEmail('inv-owner');
  org = await createOrg(t, owner, 'Invite Co');
  admin = uniqueEmail('inv-admin');
  member = uniqueEmail('inv-member');
  for (const [email, role] of [[admin, 'admin'], [member, 'member']] as const) {
    const ticket = await invite(t, owner, org, email, role);
    ok(await t.as(email, ACCEPT, { token: ticket.token }));
  }
});
afterAll(async () => {
  await t?.app.close();
});

describe('inviteMember', () => {
  it('returns the token once (256 bits, base64url), stores only its SHA-256, writes member.invited and an outbox row without the token', async () => {
    const email = uniqueEmail('inv-new');
    const result = await t.as(owner, INVITE, { org, input: { email: `  ${email.toUpperCase()} `, roleKey: 'viewer' } });
    const ticket = ok(result).inviteMember;
    expect(ticket.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(ticket.invitation).toMatchObject({ email, status: 'PENDING', acceptedAt: null, role: { key: 'viewer' }, organization: { id: org, name: 'Invite Co' }, invitedBy: { email: owner } });
    const expires = new Date(ticket.invitation.expiresAt).getTime() - new Date(ticket.invitation.createdAt).getTime();
    expect(Math.abs(expires - 7 * DAY)).toBeLessThan(1000);
    const row = await storedInvitation(t, ticket.invitation.id);
    const { createHash } = await import('node:crypto');
    expect(row.hash).toBe(createHash('sha256').update(ticket.token).digest('hex'));
    const everything = JSON.stringify(await readAll(t.app, `SELECT * FROM invitations WHERE id = $1`, [ticket.invitation.id]));
    expect(everything).not.toContain(ticket.token);
    const outbox = await readAll(t.app, `SELECT type, recipient_email, payload FROM email_outbox WHERE organization_id = $1 AND payload->>'invitationId' = $2`, [org, ticket.invitation.id]);
    expect(outbox).toEqual([{ type: 'invitation.created', recipient_email: email, payload: expect.objectContaining({ invitationId: ticket.invitation.id, organizationName: 'Invite Co', roleKey: 'viewer' }) }]);
    expect(JSON.stringify(outbox)).not.toContain(ticket.token);
    expect(JSON.stringify(outbox)).not.toContain(row.hash);
    const events = await readAll(t.app, `SELECT actor_email, resource_type, resource_name, metadata FROM audit_events WHERE action = 'member.invited' AND resource_id = $1`, [ticket.invitation.id]);
    expect(events).toEqual([{ actor_email: owner, resource_type: 'invitation', resource_name: email, metadata: expect.objectContaining({ email, roleKey: 'viewer' }) }]);
  });

  it('refuses an address that is already a member (CONFLICT, field email), whatever its case', async () => {
    const result = await t.as(owner, INVITE, { org, input: { email: member.toUpperCase(), roleKey: 'viewer' } });
    expect(errorOf(result)).toMatchObject({ code: 'CONFLICT', field: 'email' });
  });

  it('replaces a pending invitation of the same address: the old one becomes REVOKED, its token stops accepting', async () => {
    const email = uniqueEmail('inv-twice');
    const first = await invite(t, owner, org, email, 'viewer');
    const second = await invite(t, admin, org, email, 'member');
    expect((await storedInvitation(t, first.invitation.id)).status).toBe('REVOKED');
    expect((await storedInvitation(t, second.invitation.id)).status).toBe('PENDING');
    expect(errorOf(await t.as(email, ACCEPT, { token: first.token }))).toMatchObject({ code: 'PRECONDITION_FAILED', reason: 'INVITATION_REVOKED' });
    expect(ok(await t.as(email, ACCEPT, { token: second.token })).acceptInvitation.role.key).toBe('member');
    const [event] = await readAll(t.app, `SELECT metadata FROM audit_events WHERE action = 'member.invited' AND resource_id = $1`, [second.invitation.id]);
    expect(event!.metadata.replacedInvitationId).toBe(first.invitation.id);
  });

  it('never grants owner, nor an unknown role (BAD_USER_INPUT, field roleKey), nor a role above the inviter (FORBIDDEN)', async () => {
    const email = uniqueEmail('inv-role');
    expect(errorOf(await t.as(owner, INVITE, { org, input: { email, roleKey: 'owner' } }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'roleKey' });
    expect(errorOf(await t.as(owner, INVITE, { org, input: { email, roleKey: 'nobody' } }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'roleKey' });
    // A custom role holding org.delete, which an admin lacks (custom roles are written here straight to the table).
    await withAllRows(t.app, (r) => r.query(`INSERT INTO roles (organization_id, key, name, permissions) VALUES ($1, 'deleter', 'Deleter', '{org.view,org.delete}')`, [org]));
    expect(errorOf(await t.as(admin, INVITE, { org, input: { email, roleKey: 'deleter' } }))).toMatchObject({ code: 'FORBIDDEN' });
    expect(await readAll(t.app, `SELECT 1 FROM invitations WHERE email = $1`, [email])).toEqual([]);
    expect(ok(await t.as(owner, INVITE, { org, input: { email, roleKey: 'deleter' } })).inviteMember.invitation.role.key).toBe('deleter');
  });

  it('takes expiresInDays from 1 to 30 (BAD_USER_INPUT, field expiresInDays, otherwise) and validates the email (field email)', async () => {
    const email = uniqueEmail('inv-days');
    for (const days of [0, 31, -1]) {
      expect(errorOf(await t.as(owner, INVITE, { org, input: { email, roleKey: 'viewer', expiresInDays: days } }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'expiresInDays' });
    }
    expect(errorOf(await t.as(owner, INVITE, { org, input: { email: 'not-an-email', roleKey: 'viewer' } }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'email' });
    const ticket = ok(await t.as(owner, INVITE, { org, input: { email, roleKey: 'viewer', expiresInDays: 30 } })).inviteMember;
    expect(Math.abs(new Date(ticket.invitation.expiresAt).getTime() - Date.now() - 30 * DAY)).toBeLessThan(60_000);
    const one = ok(await t.as(owner, INVITE, { org, input: { email, roleKey: 'viewer', expiresInDays: 1 } })).inviteMember;
    expect(Math.abs(new Date(one.invitation.expiresAt).getTime() - Date.now() - DAY)).toBeLessThan(60_000);
  });

  it('needs org.members.invite: a member is FORBIDDEN, a non-member NOT_FOUND, nobody UNAUTHENTICATED; nothing is written', async () => {
    const email = uniqueEmail('inv-denied');
    const input = { email, roleKey: 'viewer' };
    expect(codes(await t.as(member, INVITE, { org, input }))).toEqual(['FORBIDDEN']);
    expect(codes(await t.as(uniqueEmail('stranger'), INVITE, { org, input }))).toEqual(['NOT_FOUND']);
    expect(codes(await t.as(null, INVITE, { org, input }))).toEqual(['UNAUTHENTICATED']);
    expect(await readAll(t.app, `SELECT 1 FROM invitations WHERE email = $1`, [email])).toEqual([]);
  });
});

describe('resendInvitation and revokeInvitation', () => {
  it('resend issues a new token (the old one is NOT_FOUND) and restarts the expiry; audited without the token', async () => {
    const email = uniqueEmail('inv-resend');
    const first = await invite(t, owner, org, email, 'viewer', 3);
    await withAllRows(t.app, (r) => r.query(`UPDATE invitations SET expires_at = now() + interval '1 hour' WHERE id = $1`, [first.invitation.id]));
    const resent = ok(await t.as(admin, RESEND, { id: first.invitation.id })).resendInvitation;
    expect(resent.token).not.toBe(first.token);
    expect(resent.invitation).toMatchObject({ id: first.invitation.id, status: 'PENDING' });
    expect(Math.abs(new Date(resent.invitation.expiresAt).getTime() - Date.now() - 3 * DAY)).toBeLessThan(60_000);
    for (const document of [PREVIEW, ACCEPT, DECLINE]) expect(errorOf(await t.as(email, document, { token: first.token }))).toMatchObject({ code: 'NOT_FOUND', message: 'Invitation not found' });
    expect(ok(await t.as(null, PREVIEW, { token: resent.token })).invitation.id).toBe(first.invitation.id);
    expect(await auditCount(t, org, 'invitation.resent')).toBeGreaterThanOrEqual(1);
    const outbox = await readAll(t.app, `SELECT type FROM email_outbox WHERE payload->>'invitationId' = $1 ORDER BY created_at`, [first.invitation.id]);
    expect(outbox.map((r) => r.type)).toEqual(['invitation.created', 'invitation.resent']);
  });

  it('revoke makes it REVOKED (audited); a second revoke, a resend or an accept is PRECONDITION_FAILED INVITATION_REVOKED', async () => {
    const email = uniqueEmail('inv-revoke');
    const ticket = await invite(t, owner, org, email);
    const before = await auditCount(t, org, 'invitation.revoked');
    expect(ok(await t.as(admin, REVOKE, { id: ticket.invitation.id })).revokeInvitation).toEqual({ id: ticket.invitation.id, status: 'REVOKED' });
    expect(await auditCount(t, org, 'invitation.revoked')).toBe(before + 1);
    expect((await storedInvitation(t, ticket.invitation.id)).revoked_at).not.toBeNull();
    for (const [document, variables] of [[REVOKE, { id: ticket.invitation.id }], [RESEND, { id: ticket.invitation.id }]] as const) {
      expect(errorOf(await t.as(owner, document, variables))).toMatchObject({ code: 'PRECONDITION_FAILED', reason: 'INVITATION_REVOKED' });
    }
    expect(errorOf(await t.as(email, ACCEPT, { token: ticket.token }))).toMatchObject({ code: 'PRECONDITION_FAILED', reason: 'INVITATION_REVOKED' });
    expect(await auditCount(t, org, 'invitation.revoked')).toBe(before + 1);
  });

  it('needs org.members.invite: a member is FORBIDDEN, a stranger NOT_FOUND', async () => {
    const ticket = await invite(t, owner, org, uniqueEmail('inv-guard'));
    for (const document of [REVOKE, RESEND]) {
      expect(codes(await t.as(member, document, { id: ticket.invitation.id }))).toEqual(['FORBIDDEN']);
      expect(codes(await t.as(uniqueEmail('stranger'), document, { id: ticket.invitation.id }))).toEqual(['NOT_FOUND']);
      expect(codes(await t.as(null, document, { id: ticket.invitation.id }))).toEqual(['UNAUTHENTICATED']);
    }
    expect((await storedInvitation(t, ticket.invitation.id)).status).toBe('PENDING');
  });
});

describe('acceptInvitation', () => {
  it('creates the membership with the invited role, writes member.joined, and the new member sees the organization at once', async () => {
    const email = uniqueEmail('inv-join');
    const ticket = await invite(t, admin, org, email, 'viewer');
    const result = await t.as(email, `mutation($token: String!) { acceptInvitation(token: $token) { role { key } organization { id name memberCount } user { email } } }`, { token: ticket.token });
    expect(ok(result).acceptInvitation).toMatchObject({ role: { key: 'viewer' }, organization: { id: org, name: 'Invite Co' }, user: { email } });
    const id = await userId(t, email);
    const [membership] = await readAll(t.app, `SELECT role_key, invited_by FROM memberships WHERE organization_id = $1 AND user_id = $2`, [org, id]);
    expect(membership).toEqual({ role_key: 'viewer', invited_by: await userId(t, admin) });
    const stored = await storedInvitation(t, ticket.invitation.id);
    expect(stored).toMatchObject({ status: 'ACCEPTED', accepted_by: id });
    const events = await readAll(t.app, `SELECT actor_email, resource_id, metadata FROM audit_events WHERE action = 'member.joined' AND organization_id = $1 AND resource_id = $2`, [org, id]);
    expect(events).toEqual([{ actor_email: email, resource_id: id, metadata: { roleKey: 'viewer', invitationId: ticket.invitation.id, via: 'invitation' } }]);
    expect(ok(await t.as(email, `query($id: ID!) { organization(id: $id) { viewerRole { key } } }`, { id: org })).organization.viewerRole.key).toBe('viewer');
    expect(errorOf(await t.as(email, ACCEPT, { token: ticket.token }))).toMatchObject({ code: 'PRECONDITION_FAILED', reason: 'INVITATION_ACCEPTED' });
    expect(await memberCount(t, org, id)).toBe(1);
  });

  it("is FORBIDDEN to anyone but the invited verified address, and to the invitee while unverified; the invitation stays PENDING", async () => {
    const email = uniqueEmail('inv-who');
    const ticket = await invite(t, owner, org, email);
    expect(errorOf(await t.as(uniqueEmail('someone-else'), ACCEPT, { token: ticket.token }))).toMatchObject({ code: 'FORBIDDEN' });
    expect(errorOf(await t.as(email, ACCEPT, { token: ticket.token }, { verified: false }))).toMatchObject({ code: 'FORBIDDEN' });
    expect(errorOf(await t.as(uniqueEmail('someone-else'), DECLINE, { token: ticket.token }))).toMatchObject({ code: 'FORBIDDEN' });
    expect(errorOf(await t.as(null, ACCEPT, { token: ticket.token }))).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect((await storedInvitation(t, ticket.invitation.id)).status).toBe('PENDING');
    // The invitee's email in any case is the invited address.
    expect(ok(await t.as(email.toUpperCase(), ACCEPT, { token: ticket.token })).acceptInvitation.role.key).toBe('member');
  });

  it('answers an unknown, malformed or empty token NOT_FOUND, naming only the kind', async () => {
    const { randomBytes } = await import('node:crypto');
    for (const token of [randomBytes(32).toString('base64url'), 'nope', '', 'x'.repeat(5000), "' OR 1=1 --"]) {
      for (const document of [ACCEPT, DECLINE, PREVIEW]) {
        const result = await t.as(member, document, { token });
        expect(errorOf(result)).toEqual({ code: 'NOT_FOUND', reason: undefined, field: undefined, message: 'Invitation not found' });
      }
    }
  });

  it('an expired invitation becomes EXPIRED when used: PRECONDITION_FAILED INVITATION_EXPIRED, no member, no audit', async () => {
    const email = uniqueEmail('inv-late');
    const ticket = await invite(t, owner, org, email);
    await withAllRows(t.app, (r) => r.query(`UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = $1`, [ticket.invitation.id]));
    const joined = await auditCount(t, org, 'member.joined');
    expect(ok(await t.as(null, PREVIEW, { token: ticket.token })).invitation.status).toBe('EXPIRED');
    expect(errorOf(await t.as(email, ACCEPT, { token: ticket.token }))).toMatchObject({ code: 'PRECONDITION_FAILED', reason: 'INVITATION_EXPIRED' });
    expect((await storedInvitation(t, ticket.invitation.id)).status).toBe('EXPIRED');
    expect(errorOf(await t.as(email, ACCEPT, { token: ticket.token }))).toMatchObject({ code: 'PRECONDITION_FAILED', reason: 'INVITATION_EXPIRED' });
    expect(errorOf(await t.as(owner, RESEND, { id: ticket.invitation.id }))).toMatchObject({ code: 'PRECONDITION_FAILED', reason: 'INVITATION_EXPIRED' });
    expect(await memberCount(t, org, await userId(t, email))).toBe(0);
    expect(await auditCount(t, org, 'member.joined')).toBe(joined);
    // Re-invitation after expiry works.
    const again = await invite(t, owner, org, email);
    expect(ok(await t.as(email, ACCEPT, { token: again.token })).acceptInvitation.role.key).toBe('member');
  });

  it('is CONFLICT for someone who became a member meanwhile; the invitation stays PENDING', async () => {
    const email = uniqueEmail('inv-already');
    const ticket = await invite(t, owner, org, email);
    const id = await userId(t, email);
    await withAllRows(t.app, (r) => r.query(`INSERT INTO memberships (organization_id, user_id, role_key) VALUES ($1, $2, 'viewer')`, [org, id]));
    expect(errorOf(await t.as(email, ACCEPT, { token: ticket.token }))).toMatchObject({ code: 'CONFLICT' });
    expect((await storedInvitation(t, ticket.invitation.id)).status).toBe('PENDING');
    expect(await memberCount(t, org, id)).toBe(1);
  });

  it('finds no invitation of a deleted organization (NOT_FOUND, like an unknown token)', async () => {
    const doomedOwner = uniqueEmail('inv-doomed');
    const doomed = await createOrg(t, doomedOwner, 'Doomed');
    const email = uniqueEmail('inv-doomed-guest');
    const ticket = await invite(t, doomedOwner, doomed, email);
    await withAllRows(t.app, (r) => r.query(`UPDATE organizations SET status = 'DELETED', deleted_at = now() WHERE id = $1`, [doomed]));
    for (const document of [PREVIEW, ACCEPT]) expect(errorOf(await t.as(email, document, { token: ticket.token }))).toMatchObject({ code: 'NOT_FOUND', message: 'Invitation not found' });
    expect(ok(await t.as(email, `{ me { pendingInvitations { id } } }`)).me.pendingInvitations).toEqual([]);
  });

  it('re-invitation after removal works', async () => {
    const email = uniqueEmail('inv-back');
    const first = await invite(t, owner, org, email, 'viewer');
    ok(await t.as(email, ACCEPT, { token: first.token }));
    const id = await userId(t, email);
    await withAllRows(t.app, (r) => r.query(`DELETE FROM memberships WHERE organization_id = $1 AND user_id = $2`, [org, id]));
    const second = await invite(t, owner, org, email, 'member');
    expect(ok(await t.as(email, ACCEPT, { token: second.token })).acceptInvitation.role.key).toBe('member');
    expect(await memberCount(t, org, id)).toBe(1);
  });
});

describe('declineInvitation', () => {
  it('makes it DECLINED (audited as invitation.declined, actor the invitee); it can no longer be accepted or declined', async () => {
    const email = uniqueEmail('inv-no');
    const ticket = await invite(t, owner, org, email);
    expect(ok(await t.as(email, DECLINE, { token: ticket.token })).declineInvitation).toEqual({ id: ticket.invitation.id, status: 'DECLINED' });
    const stored = await storedInvitation(t, ticket.invitation.id);
    expect(stored.status).toBe('DECLINED');
    expect(stored.declined_at).not.toBeNull();
    const events = await readAll(t.app, `SELECT actor_email FROM audit_events WHERE action = 'invitation.declined' AND resource_id = $1`, [ticket.invitation.id]);
    expect(events).toEqual([{ actor_email: email }]);
    expect(errorOf(await t.as(email, ACCEPT, { token: ticket.token }))).toMatchObject({ code: 'PRECONDITION_FAILED', reason: 'INVITATION_DECLINED' });
    expect(errorOf(await t.as(email, DECLINE, { token: ticket.token }))).toMatchObject({ code: 'PRECONDITION_FAILED', reason: 'INVITATION_DECLINED' });
    // Declining did not let the invitee in.
    expect(codes(await t.as(email, `query($id: ID!) { organization(id: $id) { id } }`, { id: org }))).toEqual(['NOT_FOUND']);
  });
});
