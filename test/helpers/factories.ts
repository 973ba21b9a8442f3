import { randomUUID } from 'node:crypto';
import { systemPrincipal } from '../../src/auth/principal';
import { TenantTransaction } from '../../src/database/tenant-transaction';
import { ok, type TestApp } from './app';
import { withAllRows } from './db';

export interface CreatedOrganization {
  id: string;
  slug: string;
  defaultWorkspaceId: string;
}

let counter = 0;
export const uniqueEmail = (label = 'user'): string => `${label}-${process.pid}-${++counter}-${Date.now().toString(36)}@example.com`;

export async function createOrganization(app: TestApp, owner: string, input: Record<string, unknown> = {}): Promise<CreatedOrganization> {
  const data = ok(
    await app.gql<{ createOrganization: { id: string; slug: string; workspaces: { nodes: Array<{ id: string }> } } }>(
      `mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { id slug workspaces { nodes { id } } } }`,
      { input: { name: `Org ${++counter}`, ...input } },
      { as: owner },
    ),
  );
  return { id: data.createOrganization.id, slug: data.createOrganization.slug, defaultWorkspaceId: data.createOrganization.workspaces.nodes[0]!.id };
}

/**
 * Adds a member with a role straight through the database (invitations come with a later
 * feature), in a transaction of the service's role scoped to that organization, as a job would.
 * `name`: the name the member's token carries when they are provisioned; `invitedBy`: the
 * membership's inviter (a user id).
 */
export async function addMember(app: TestApp, organizationId: string, email: string, roleKey: string, options: { name?: string; invitedBy?: string } = {}): Promise<string> {
  const as = options.name === undefined ? { as: email } : { token: await app.token(email, { name: options.name }) };
  const { me } = ok(await app.gql<{ me: { user: { id: string } } }>(`{ me { user { id } } }`, {}, as));
  await TenantTransaction.run(app.db, systemPrincipal(organizationId, 'test:addMember'), randomUUID(), (tx) =>
    tx.query(`INSERT INTO memberships (organization_id, user_id, role_key, invited_by) VALUES ($1, $2, $3, $4)`, [organizationId, me.user.id, roleKey, options.invitedBy ?? null]),
  );
  return me.user.id;
}

/**
 * Sets a feature flag override through `setFeatureFlag`, as `as` (who must hold
 * org.features.manage), e.g. `restricted_workspaces`, which the trial plan PRO lacks.
 */
export async function setFeatureFlag(app: TestApp, organizationId: string, key: string, enabled: boolean, as: string): Promise<void> {
  ok(
    await app.gql(
      `mutation($org: ID!, $key: String!, $enabled: Boolean!) { setFeatureFlag(organizationId: $org, key: $key, enabled: $enabled) { key enabled } }`,
      { org: organizationId, key, enabled },
      { as },
    ),
  );
}

/**
 * Sets limits of one plan of the catalogue in this test's own database (each test app has a
 * fresh one), e.g. `{ max_workspaces: null }` for a test that creates more workspaces than PRO —
 * the plan every new organization starts on — allows. Column names of the `plans` table.
 */
export async function setPlanLimits(app: TestApp, plan: string, limits: Record<string, number | null>): Promise<void> {
  const columns = Object.keys(limits);
  if (!columns.every((c) => /^(max|total)_[a-z_]+$/.test(c))) throw new Error(`not a limit column: ${columns.join(', ')}`);
  await withAllRows(app, (runner) => runner.query(`UPDATE plans SET ${columns.map((c, i) => `${c} = $${i + 2}`).join(', ')} WHERE key = $1`, [plan, ...Object.values(limits)]));
}
