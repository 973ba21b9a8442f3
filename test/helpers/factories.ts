import { ok, type TestApp } from './app';

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
 * feature), writing as the service role scoped to that organization like any request would.
 */
export async function addMember(app: TestApp, organizationId: string, email: string, roleKey: string): Promise<string> {
  ok(await app.gql(`{ me { user { id } } }`, {}, { as: email }));
  return app.db.withConnection(async (runner) => {
    await runner.startTransaction();
    await runner.query(`SELECT set_config('role', 'tenant_service_app', true), set_config('app.org_ids', $1, true)`, [organizationId]);
    const [user] = await runner.query(`SELECT id FROM users WHERE email = $1`, [email.toLowerCase()]);
    await runner.query(`INSERT INTO memberships (organization_id, user_id, role_key) VALUES ($1, $2, $3)`, [organizationId, user.id, roleKey]);
    await runner.commitTransaction();
    return user.id as string;
  });
}
