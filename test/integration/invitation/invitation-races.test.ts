import { readAll } from '../../helpers/db';
import { uniqueEmail } from '../../helpers/factories';
import { concurrently, outcomes, PARALLEL, RACE_NOTE, ROUNDS } from '../../helpers/races';
import { ACCEPT, auditCount, createOrg, invite, type InvitationApp, memberCount, REVOKE, startInvitationApp, storedInvitation, userId } from './invitation-helpers';

/** Invitations under concurrency (SPEC §5: racing accepts yield exactly one membership). */
let t: InvitationApp;
let owner: string;
let org: string;

beforeAll(async () => {
  t = await startInvitationApp();
  owner = uniqueEmail('race-owner');
  org = await createOrg(t, owner, 'Race Track');
});
afterAll(async () => {
  await t?.app.close();
});

const joinedEvents = async (user: string): Promise<number> =>
  (await readAll<{ n: number }>(t.app, `SELECT count(*)::int AS n FROM audit_events WHERE organization_id = $1 AND action = 'member.joined' AND resource_id = $2`, [org, user]))[0]!.n;

describe(`races ${RACE_NOTE}`, () => {
  it(`${PARALLEL} concurrent accepts of one invitation: exactly one membership and one member.joined, the rest INVITATION_ACCEPTED`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const email = uniqueEmail(`race-accept-${round}`);
      const id = await userId(t, email);
      const ticket = await invite(t, owner, org, email);
      const results = await concurrently(PARALLEL, () => t.as(email, ACCEPT, { token: ticket.token }));
      expect(outcomes(results)).toEqual({ ok: 1, '200:PRECONDITION_FAILED': PARALLEL - 1 });
      expect(results.filter((r) => r.errors).every((r) => r.errors![0]!.extensions!.reason === 'INVITATION_ACCEPTED')).toBe(true);
      expect(await memberCount(t, org, id)).toBe(1);
      expect(await joinedEvents(id)).toBe(1);
      expect((await storedInvitation(t, ticket.invitation.id)).status).toBe('ACCEPTED');
    }
  });

  it(`accept racing revoke (${PARALLEL} requests): either a member and ACCEPTED, or REVOKED and no member, never both`, async () => {
    for (let round = 0; round < ROUNDS * 2; round++) {
      const email = uniqueEmail(`race-revoke-${round}`);
      const id = await userId(t, email);
      const ticket = await invite(t, owner, org, email);
      const revokedBefore = await auditCount(t, org, 'invitation.revoked');
      // Interleaved: even requests accept, odd ones revoke.
      const results = await concurrently(PARALLEL, (i) => (i % 2 === 0 ? t.as(email, ACCEPT, { token: ticket.token }) : t.as(owner, REVOKE, { id: ticket.invitation.id })));
      const accepted = results.filter((r, i) => i % 2 === 0 && !r.errors).length;
      const revoked = results.filter((r, i) => i % 2 === 1 && !r.errors).length;
      expect(accepted + revoked).toBe(1);
      // Every loser learns what the winner did.
      const reason = accepted === 1 ? 'INVITATION_ACCEPTED' : 'INVITATION_REVOKED';
      expect(results.filter((r) => r.errors).map((r) => [r.errors![0]!.extensions!.code, r.errors![0]!.extensions!.reason])).toEqual(Array(PARALLEL - 1).fill(['PRECONDITION_FAILED', reason]));
      const status = (await storedInvitation(t, ticket.invitation.id)).status;
      const members = await memberCount(t, org, id);
      if (accepted === 1) {
        expect([status, members, await joinedEvents(id), await auditCount(t, org, 'invitation.revoked')]).toEqual(['ACCEPTED', 1, 1, revokedBefore]);
      } else {
        expect([status, members, await joinedEvents(id), await auditCount(t, org, 'invitation.revoked')]).toEqual(['REVOKED', 0, 0, revokedBefore + 1]);
      }
    }
  });

  it(`${PARALLEL} concurrent invitations of one address leave exactly one PENDING (the others REVOKED)`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const email = uniqueEmail(`race-invite-${round}`);
      const results = await concurrently(PARALLEL, () => t.as(owner, `mutation($org: ID!, $email: String!) { inviteMember(organizationId: $org, input: { email: $email, roleKey: "viewer" }) { invitation { id } } }`, { org, email }));
      expect(outcomes(results)).toEqual({ ok: PARALLEL });
      const rows = await readAll<{ status: string; n: number }>(t.app, `SELECT status, count(*)::int AS n FROM invitations WHERE organization_id = $1 AND email = $2 GROUP BY status ORDER BY status`, [org, email]);
      expect(rows).toEqual([{ status: 'PENDING', n: 1 }, { status: 'REVOKED', n: PARALLEL - 1 }]);
    }
  });
});
