import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll, withAllRows } from '../../helpers/db';
import { uniqueEmail } from '../../helpers/factories';
import { team } from './notification-helpers';

/**
 * Organization.deletionImpact (SPEC §5, issue 11): exact counts against a seeded organization
 * (what the tables hold for it), and the blockers against what deleteOrganization then answers.
 */

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

const IMPACT = `query($id: ID!) { organization(id: $id) { deletionImpact { workspaces environments activeEnvironments members pendingInvitations apiKeys secrets blockers } } }`;
const DELETE = `mutation($id: ID!, $slug: String!) { deleteOrganization(id: $id, confirmSlug: $slug) { status } }`;
const ENV = `mutation($ws: ID!, $name: String!) { createEnvironment(workspaceId: $ws, input: { name: $name, tier: DEV, resources: { cpu: 0.25, ramMb: 256, diskGb: 1 } }) { id } }`;
const INVITE = `mutation($org: ID!, $email: String!) { inviteMember(organizationId: $org, input: { email: $email, roleKey: "viewer" }) { invitation { id } } }`;

it('counts exactly what the organization holds, and its blockers are what deleteOrganization answers, one state after another', async () => {
  const t = await team(app, 'impact');
  const as = { as: t.owner };
  const impact = async () => ok(await app.gql(IMPACT, { id: t.org.id }, as)).organization.deletionImpact;
  const attempt = async () => {
    const result = await app.gql(DELETE, { id: t.org.id, slug: t.org.slug }, as);
    return result.errors ? `${codes(result)[0]}:${result.errors[0]!.extensions!.reason}` : result.data!.deleteOrganization.status;
  };

  const workspaces = [t.org.defaultWorkspaceId];
  for (const name of ['Second', 'Third']) workspaces.push(ok(await app.gql(`mutation($org: ID!, $name: String!) { createWorkspace(organizationId: $org, input: { name: $name }) { id } }`, { org: t.org.id, name }, as)).createWorkspace.id);
  const environments: string[] = [];
  for (const [i, ws] of [workspaces[0], workspaces[0], workspaces[1], workspaces[2], workspaces[2], workspaces[2]].entries()) {
    environments.push(ok(await app.gql(ENV, { ws, name: `env-${i}` }, as)).createEnvironment.id);
  }
  for (const id of environments.slice(0, 2)) ok(await app.gql(`mutation($id: ID!) { destroyEnvironment(id: $id) { id } }`, { id }, as));
  const invitations: string[] = [];
  for (let i = 0; i < 4; i++) invitations.push(ok(await app.gql(INVITE, { org: t.org.id, email: uniqueEmail('impact-invitee') }, as)).inviteMember.invitation.id);
  // Only PENDING, unexpired invitations count: one revoked, one expired (moved in the database).
  ok(await app.gql(`mutation($id: ID!) { revokeInvitation(id: $id) { id } }`, { id: invitations[0] }, as));
  await withAllRows(app, (r) => r.query(`UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = $1`, [invitations[1]]));
  for (const key of ['A', 'B']) ok(await app.gql(`mutation($org: ID!, $key: String!) { setSecret(organizationId: $org, key: $key, value: "v") { key } }`, { org: t.org.id, key }, as));
  ok(await app.gql(`mutation($org: ID!, $ws: ID!) { setSecret(organizationId: $org, workspaceId: $ws, key: "A", value: "w") { key } }`, { org: t.org.id, ws: workspaces[1] }, as));

  const [db] = await readAll<Record<string, number>>(
    app,
    `SELECT (SELECT count(*)::int FROM workspaces WHERE organization_id = $1) AS workspaces,
            (SELECT count(*)::int FROM environments WHERE organization_id = $1) AS environments,
            (SELECT count(*)::int FROM environments WHERE organization_id = $1 AND is_active) AS "activeEnvironments",
            (SELECT count(*)::int FROM memberships WHERE organization_id = $1) AS members,
            (SELECT count(*)::int FROM secrets WHERE organization_id = $1) AS secrets`,
    [t.org.id],
  );
  expect(db).toEqual({ workspaces: 3, environments: 6, activeEnvironments: 4, members: 4, secrets: 3 });
  expect(await impact()).toEqual({ ...db, pendingInvitations: 2, apiKeys: 0, blockers: ['ACTIVE_ENVIRONMENTS'] });
  expect(await attempt()).toBe('PRECONDITION_FAILED:ACTIVE_ENVIRONMENTS');

  // A paid plan, ACTIVE: both blockers; deletion answers the first.
  ok(await app.gql(`mutation($org: ID!) { changePlan(organizationId: $org, plan: STARTER) { status } }`, { org: t.org.id }, as));
  expect((await impact()).blockers).toEqual(['ACTIVE_ENVIRONMENTS', 'ACTIVE_SUBSCRIPTION']);
  expect(await attempt()).toBe('PRECONDITION_FAILED:ACTIVE_ENVIRONMENTS');

  for (const id of environments.slice(2)) ok(await app.gql(`mutation($id: ID!) { destroyEnvironment(id: $id) { id } }`, { id }, as));
  expect(await impact()).toMatchObject({ environments: 6, activeEnvironments: 0, blockers: ['ACTIVE_SUBSCRIPTION'] });
  expect(await attempt()).toBe('PRECONDITION_FAILED:ACTIVE_SUBSCRIPTION');

  ok(await app.gql(`mutation($org: ID!) { cancelSubscription(organizationId: $org, atPeriodEnd: true) { status } }`, { org: t.org.id }, as));
  expect(await impact()).toEqual({ ...db, activeEnvironments: 0, pendingInvitations: 2, apiKeys: 0, blockers: [] });
  expect(await attempt()).toBe('DELETED');
});
