import { usesRealPostgres } from '../../helpers/app';
import { readAll, sideConnection, untilWaitingOnLocks } from '../../helpers/db';
import { uniqueEmail } from '../../helpers/factories';
import { concurrently, outcomes, PARALLEL, RACE_NOTE, ROUNDS } from '../../helpers/races';
import { ACCEPT, auditCount, createOrg, INVITE, invite, type InvitationApp, memberCount, REVOKE, startInvitationApp, storedInvitation, userId } from './invitation-helpers';

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

  (usesRealPostgres() ? it : it.skip)('an invitation with a custom role, held mid-way, and that role\'s deletion: the deletion waits for the membership lock and answers CONFLICT (no half-made invitation, no internal error)', async () => {
    const CREATE_ROLE = `mutation($org: ID!, $key: String!) { createRole(organizationId: $org, input: { key: $key, name: $key, permissions: ["org.view"] }) { id } }`;
    const DELETE_ROLE = `mutation($id: ID!) { deleteRole(id: $id) }`;
    const created = await t.as(owner, CREATE_ROLE, { org, key: 'held_role' });
    expect(created.errors).toBeUndefined();
    const email = uniqueEmail('held-invite');
    // The test's own session holds the per-address lock an invitation takes, so the invitation stops half-way.
    const side = await sideConnection(t.app, 'invitation-race-test');
    try {
      await side.query(`SELECT pg_advisory_lock(hashtextextended($1, 0))`, [`invitation:${org}:${email}`]);
      const invitation = t.as(owner, INVITE, { org, input: { email, roleKey: 'held_role' } });
      await untilWaitingOnLocks(side, 1);
      const deletion = t.as(owner, DELETE_ROLE, { id: created.data!.createRole.id });
      // The deletion must queue behind the invitation's membership lock (it would otherwise delete the role under it).
      await Promise.race([deletion, untilWaitingOnLocks(side, 2)]);
      await side.query(`SELECT pg_advisory_unlock(hashtextextended($1, 0))`, [`invitation:${org}:${email}`]);
      const [invited, deleted] = await Promise.all([invitation, deletion]);
      expect(invited.errors).toBeUndefined();
      expect(deleted.errors?.map((e) => e.extensions?.code)).toEqual(['CONFLICT']);
      const [left] = await readAll<{ roles: number; pending: number }>(
        t.app,
        `SELECT (SELECT count(*)::int FROM roles WHERE organization_id = $1 AND key = 'held_role') AS roles,
                (SELECT count(*)::int FROM invitations WHERE organization_id = $1 AND email = $2 AND status = 'PENDING') AS pending`,
        [org, email],
      );
      expect(left).toEqual({ roles: 1, pending: 1 });
    } finally {
      await side.end();
    }
  });

});
