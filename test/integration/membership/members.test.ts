import { randomUUID } from 'node:crypto';
import { systemPrincipal } from '../../../src/auth/principal';
import { TenantTransaction } from '../../../src/database/tenant-transaction';
import { codes, type GqlResult, ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll } from '../../helpers/db';
import { addMember, createOrganization, uniqueEmail, type CreatedOrganization } from '../../helpers/factories';

/** SPEC §5 members and ownership: every rule with its exact code, reason and field; escalation; isolation. */
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

const UPDATE_ROLE = `mutation($org: ID!, $user: ID!, $role: String!) { updateMemberRole(organizationId: $org, userId: $user, roleKey: $role) { id role { key } user { id } } }`;
const REMOVE = `mutation($org: ID!, $user: ID!) { removeMember(organizationId: $org, userId: $user) }`;
const LEAVE = `mutation($org: ID!) { leaveOrganization(organizationId: $org) }`;
const TRANSFER = `mutation($org: ID!, $user: ID!, $c: String!) { transferOwnership(organizationId: $org, newOwnerId: $user, confirmation: $c) { id owner { id } viewerRole { key } } }`;
const PHRASE = 'transfer ownership';

interface Team {
  org: CreatedOrganization;
  emails: Record<'owner' | 'admin' | 'member' | 'viewer', string>;
  ids: Record<'owner' | 'admin' | 'member' | 'viewer', string>;
}

const userId = async (email: string): Promise<string> => ok(await app.gql(`{ me { user { id } } }`, {}, { as: email })).me.user.id;

async function team(label: string): Promise<Team> {
  const emails = { owner: uniqueEmail(`${label}-owner`), admin: uniqueEmail(`${label}-admin`), member: uniqueEmail(`${label}-member`), viewer: uniqueEmail(`${label}-viewer`) };
  const org = await createOrganization(app, emails.owner);
  const ids = {
    owner: await userId(emails.owner),
    admin: await addMember(app, org.id, emails.admin, 'admin'),
    member: await addMember(app, org.id, emails.member, 'member'),
    viewer: await addMember(app, org.id, emails.viewer, 'viewer'),
  };
  return { org, emails, ids };
}

/** Every membership of the organization as user → role, read on a connection that sees every row. */
async function roles(orgId: string): Promise<Record<string, string>> {
  const rows = await readAll<{ user_id: string; role_key: string }>(app, `SELECT user_id, role_key FROM memberships WHERE organization_id = $1`, [orgId]);
  return Object.fromEntries(rows.map((r) => [r.user_id, r.role_key]));
}

async function audit(orgId: string, action?: string): Promise<Array<{ action: string; resource_id: string; changes: any; metadata: any }>> {
  return readAll(app, `SELECT action, resource_id, changes, metadata FROM audit_events WHERE organization_id = $1 AND ($2::text IS NULL OR action = $2) ORDER BY occurred_at, id`, [orgId, action ?? null]);
}

const error = (r: GqlResult) => ({ code: r.errors?.[0]?.extensions?.code, reason: r.errors?.[0]?.extensions?.reason, field: r.errors?.[0]?.extensions?.field });

describe('updateMemberRole', () => {
  let t: Team;
  beforeEach(async () => {
    t = await team('role');
  });

  it('changes a role, audits member.role_changed with the old and new role, and the member gets the new permissions on their next request', async () => {
    const before = ok(await app.gql(`query($id: ID!) { organization(id: $id) { viewerPermissions } }`, { id: t.org.id }, { as: t.emails.viewer }));
    expect(before.organization.viewerPermissions).not.toContain('environment.create');
    const data = ok(await app.gql(UPDATE_ROLE, { org: t.org.id, user: t.ids.viewer, role: 'member' }, { as: t.emails.admin }));
    expect(data.updateMemberRole).toMatchObject({ role: { key: 'member' }, user: { id: t.ids.viewer } });
    const after = ok(await app.gql(`query($id: ID!) { organization(id: $id) { viewerPermissions } }`, { id: t.org.id }, { as: t.emails.viewer }));
    expect(after.organization.viewerPermissions).toContain('environment.create');
    const [event] = await audit(t.org.id, 'member.role_changed');
    expect(event).toMatchObject({
      resource_id: t.ids.viewer,
      changes: { changedFields: ['roleKey'], oldValues: { roleKey: 'viewer' }, newValues: { roleKey: 'member' } },
      metadata: { userId: t.ids.viewer, oldRole: 'viewer', newRole: 'member' },
    });
  });

  it('never grants owner (BAD_USER_INPUT, field roleKey), refuses an unknown role (BAD_USER_INPUT, roleKey), and changes nothing', async () => {
    const owner = await app.gql(UPDATE_ROLE, { org: t.org.id, user: t.ids.admin, role: 'owner' }, { as: t.emails.owner });
    expect(error(owner)).toEqual({ code: 'BAD_USER_INPUT', reason: undefined, field: 'roleKey' });
    const unknown = await app.gql(UPDATE_ROLE, { org: t.org.id, user: t.ids.admin, role: 'nosuchrole' }, { as: t.emails.owner });
    expect(error(unknown)).toEqual({ code: 'BAD_USER_INPUT', reason: undefined, field: 'roleKey' });
    expect((await roles(t.org.id))[t.ids.admin]).toBe('admin');
    expect(await audit(t.org.id, 'member.role_changed')).toEqual([]);
  });

  it('the last owner cannot be demoted, not even by themselves (PRECONDITION_FAILED, LAST_OWNER)', async () => {
    const r = await app.gql(UPDATE_ROLE, { org: t.org.id, user: t.ids.owner, role: 'admin' }, { as: t.emails.owner });
    expect(error(r)).toEqual({ code: 'PRECONDITION_FAILED', reason: 'LAST_OWNER', field: undefined });
    expect((await roles(t.org.id))[t.ids.owner]).toBe('owner');
  });

  it('escalation: an admin cannot change the owner, nor give a role above their own; FORBIDDEN and nothing changes', async () => {
    const onOwner = await app.gql(UPDATE_ROLE, { org: t.org.id, user: t.ids.owner, role: 'viewer' }, { as: t.emails.admin });
    expect(codes(onOwner)).toEqual(['FORBIDDEN']);
    // A custom role holding org.delete (which an admin lacks), made by the owner.
    await TenantTransaction.run(app.db, systemPrincipal(t.org.id, 'test:role'), randomUUID(), (tx) =>
      tx.query(`INSERT INTO roles (organization_id, key, name, permissions) VALUES ($1, 'deleter', 'Deleter', '{org.view,org.delete}')`, [t.org.id]),
    );
    const above = await app.gql(UPDATE_ROLE, { org: t.org.id, user: t.ids.viewer, role: 'deleter' }, { as: t.emails.admin });
    expect(codes(above)).toEqual(['FORBIDDEN']);
    expect(await roles(t.org.id)).toEqual({ [t.ids.owner]: 'owner', [t.ids.admin]: 'admin', [t.ids.member]: 'member', [t.ids.viewer]: 'viewer' });
    expect(await audit(t.org.id, 'member.role_changed')).toEqual([]);
  });

  it('without org.members.update_role: FORBIDDEN', async () => {
    expect(codes(await app.gql(UPDATE_ROLE, { org: t.org.id, user: t.ids.viewer, role: 'member' }, { as: t.emails.member }))).toEqual(['FORBIDDEN']);
  });
});

describe('removeMember and leaveOrganization', () => {
  let t: Team;
  beforeEach(async () => {
    t = await team('remove');
  });

  it('removes a member with their workspace grants, audits member.removed, and the removed member is refused at once', async () => {
    ok(await app.gql(`mutation($ws: ID!, $u: ID!) { setWorkspaceMemberRole(workspaceId: $ws, userId: $u, role: WORKSPACE_ADMIN) { id } }`, { ws: t.org.defaultWorkspaceId, u: t.ids.member }, { as: t.emails.owner }));
    expect(await readAll(app, `SELECT 1 FROM workspace_members WHERE organization_id = $1 AND user_id = $2`, [t.org.id, t.ids.member])).toHaveLength(1);
    // The member's token keeps working elsewhere; inside the organization it is refused at once.
    expect(ok(await app.gql(`query($id: ID!) { organization(id: $id) { id } }`, { id: t.org.id }, { as: t.emails.member })).organization.id).toBe(t.org.id);
    expect(ok(await app.gql(REMOVE, { org: t.org.id, user: t.ids.member }, { as: t.emails.admin })).removeMember).toBe(true);
    expect(codes(await app.gql(`query($id: ID!) { organization(id: $id) { id } }`, { id: t.org.id }, { as: t.emails.member }))).toEqual(['NOT_FOUND']);
    expect(codes(await app.gql(`query($id: ID!) { workspace(id: $id) { id } }`, { id: t.org.defaultWorkspaceId }, { as: t.emails.member }))).toEqual(['NOT_FOUND']);
    expect(await readAll(app, `SELECT 1 FROM workspace_members WHERE organization_id = $1 AND user_id = $2`, [t.org.id, t.ids.member])).toEqual([]);
    expect(await audit(t.org.id, 'member.removed')).toMatchObject([{ resource_id: t.ids.member, metadata: { userId: t.ids.member, roleKey: 'member' } }]);
  });

  it('the last owner can neither be removed nor leave (PRECONDITION_FAILED, LAST_OWNER)', async () => {
    expect(error(await app.gql(REMOVE, { org: t.org.id, user: t.ids.owner }, { as: t.emails.owner }))).toEqual({ code: 'PRECONDITION_FAILED', reason: 'LAST_OWNER', field: undefined });
    expect(error(await app.gql(LEAVE, { org: t.org.id }, { as: t.emails.owner }))).toEqual({ code: 'PRECONDITION_FAILED', reason: 'LAST_OWNER', field: undefined });
    expect((await roles(t.org.id))[t.ids.owner]).toBe('owner');
    expect(await audit(t.org.id, 'member.removed')).toEqual([]);
  });

  it('an admin cannot remove the owner (FORBIDDEN, nothing changes); a member without org.members.remove is FORBIDDEN', async () => {
    expect(codes(await app.gql(REMOVE, { org: t.org.id, user: t.ids.owner }, { as: t.emails.admin }))).toEqual(['FORBIDDEN']);
    expect(codes(await app.gql(REMOVE, { org: t.org.id, user: t.ids.viewer }, { as: t.emails.member }))).toEqual(['FORBIDDEN']);
    expect(Object.keys(await roles(t.org.id))).toHaveLength(4);
  });

  it('any member leaves (member.left, grants gone); a non-member gets NOT_FOUND', async () => {
    ok(await app.gql(`mutation($ws: ID!, $u: ID!) { setWorkspaceMemberRole(workspaceId: $ws, userId: $u, role: WORKSPACE_VIEWER) { id } }`, { ws: t.org.defaultWorkspaceId, u: t.ids.viewer }, { as: t.emails.owner }));
    expect(ok(await app.gql(LEAVE, { org: t.org.id }, { as: t.emails.viewer })).leaveOrganization).toBe(true);
    expect((await roles(t.org.id))[t.ids.viewer]).toBeUndefined();
    expect(await readAll(app, `SELECT 1 FROM workspace_members WHERE organization_id = $1 AND user_id = $2`, [t.org.id, t.ids.viewer])).toEqual([]);
    expect(await audit(t.org.id, 'member.left')).toMatchObject([{ resource_id: t.ids.viewer, metadata: { userId: t.ids.viewer, roleKey: 'viewer' } }]);
    expect(codes(await app.gql(LEAVE, { org: t.org.id }, { as: t.emails.viewer }))).toEqual(['NOT_FOUND']);
    expect(codes(await app.gql(LEAVE, { org: randomUUID() }, { as: t.emails.viewer }))).toEqual(['NOT_FOUND']);
  });
});

describe('transferOwnership', () => {
  let t: Team;
  beforeEach(async () => {
    t = await team('transfer');
  });

  it('moves ownership, the old owner becomes admin, one organization.ownership_transferred event', async () => {
    const data = ok(await app.gql(TRANSFER, { org: t.org.id, user: t.ids.member, c: PHRASE }, { as: t.emails.owner }));
    expect(data.transferOwnership).toMatchObject({ owner: { id: t.ids.member }, viewerRole: { key: 'admin' } });
    expect(await roles(t.org.id)).toMatchObject({ [t.ids.owner]: 'admin', [t.ids.member]: 'owner' });
    const events = await audit(t.org.id);
    expect(events.map((e) => e.action)).toEqual(['organization.created', 'organization.ownership_transferred']);
    expect(events[1]).toMatchObject({
      changes: { changedFields: ['ownerId'], oldValues: { ownerId: t.ids.owner }, newValues: { ownerId: t.ids.member } },
      metadata: { previousOwnerId: t.ids.owner, newOwnerId: t.ids.member, newOwnerPreviousRole: 'member' },
    });
    // The old owner, now admin, can no longer transfer, and cannot change the new owner.
    expect(codes(await app.gql(TRANSFER, { org: t.org.id, user: t.ids.owner, c: PHRASE }, { as: t.emails.owner }))).toEqual(['FORBIDDEN']);
    expect(codes(await app.gql(UPDATE_ROLE, { org: t.org.id, user: t.ids.member, role: 'viewer' }, { as: t.emails.owner }))).toEqual(['FORBIDDEN']);
  });

  it('refuses a wrong phrase (field confirmation), oneself (field newOwnerId), a non-member (NOT_FOUND), a non-owner (FORBIDDEN); nothing changes', async () => {
    for (const c of ['Transfer ownership', 'transfer ownership ', '', 'yes']) {
      expect(error(await app.gql(TRANSFER, { org: t.org.id, user: t.ids.admin, c }, { as: t.emails.owner }))).toEqual({ code: 'BAD_USER_INPUT', reason: undefined, field: 'confirmation' });
    }
    expect(error(await app.gql(TRANSFER, { org: t.org.id, user: t.ids.owner, c: PHRASE }, { as: t.emails.owner }))).toEqual({ code: 'BAD_USER_INPUT', reason: undefined, field: 'newOwnerId' });
    const stranger = await userId(uniqueEmail('stranger'));
    expect(codes(await app.gql(TRANSFER, { org: t.org.id, user: stranger, c: PHRASE }, { as: t.emails.owner }))).toEqual(['NOT_FOUND']);
    // NOT_FOUND comes before BAD_USER_INPUT (SPEC §6).
    expect(codes(await app.gql(TRANSFER, { org: t.org.id, user: stranger, c: 'nope' }, { as: t.emails.owner }))).toEqual(['NOT_FOUND']);
    expect(codes(await app.gql(TRANSFER, { org: t.org.id, user: t.ids.member, c: PHRASE }, { as: t.emails.admin }))).toEqual(['FORBIDDEN']);
    expect((await roles(t.org.id))[t.ids.owner]).toBe('owner');
    expect(await audit(t.org.id, 'organization.ownership_transferred')).toEqual([]);
  });

  it('requires MFA when the organization requires it (MFA_REQUIRED without amr mfa), succeeds with it', async () => {
    const mfaToken = await app.token(t.emails.owner, { mfa: true });
    ok(await app.gql(`mutation($id: ID!) { updateOrganization(id: $id, input: { security: { requireMfa: true } }) { id } }`, { id: t.org.id }, { token: mfaToken }));
    const refused = await app.gql(TRANSFER, { org: t.org.id, user: t.ids.admin, c: PHRASE }, { as: t.emails.owner });
    expect(codes(refused)).toEqual(['MFA_REQUIRED']);
    expect((await roles(t.org.id))[t.ids.owner]).toBe('owner');
    ok(await app.gql(TRANSFER, { org: t.org.id, user: t.ids.admin, c: PHRASE }, { token: mfaToken }));
    expect(await roles(t.org.id)).toMatchObject({ [t.ids.owner]: 'admin', [t.ids.admin]: 'owner' });
  });
});

describe('isolation: ids of another organization answer exactly like random ones', () => {
  it('user ids, membership ids and organization ids of another tenant: NOT_FOUND with the same message as a random or malformed id', async () => {
    const mine = await team('iso-a');
    const theirs = await team('iso-b');
    const [theirMembership] = await readAll<{ id: string }>(app, `SELECT id FROM memberships WHERE organization_id = $1 AND user_id = $2`, [theirs.org.id, theirs.ids.member]);
    const foreign = [theirs.ids.member, theirs.ids.owner, theirMembership!.id, randomUUID(), 'not-a-uuid'];
    const answers = new Set<string>();
    for (const user of foreign) {
      for (const [doc, vars] of [
        [UPDATE_ROLE, { org: mine.org.id, user, role: 'viewer' }],
        [REMOVE, { org: mine.org.id, user }],
        [TRANSFER, { org: mine.org.id, user, c: PHRASE }],
      ] as const) {
        const r = await app.gql(doc, vars, { as: mine.emails.owner });
        answers.add(JSON.stringify({ code: codes(r), message: r.errors?.[0]?.message, data: r.data }));
      }
    }
    expect([...answers]).toEqual([JSON.stringify({ code: ['NOT_FOUND'], message: 'Member not found', data: null })]);
    // Their organization through my token: like a random organization id.
    const orgAnswers = new Set<string>();
    for (const org of [theirs.org.id, randomUUID()]) {
      for (const [doc, vars] of [
        [UPDATE_ROLE, { org, user: theirs.ids.member, role: 'viewer' }],
        [REMOVE, { org, user: theirs.ids.member }],
        [LEAVE, { org }],
        [TRANSFER, { org, user: theirs.ids.member, c: PHRASE }],
      ] as const) {
        const r = await app.gql(doc, vars, { as: mine.emails.owner });
        orgAnswers.add(JSON.stringify({ code: codes(r), message: r.errors?.[0]?.message }));
      }
    }
    expect([...orgAnswers]).toEqual([JSON.stringify({ code: ['NOT_FOUND'], message: 'Organization not found' })]);
    expect(Object.keys(await roles(theirs.org.id))).toHaveLength(4);
  });
});
