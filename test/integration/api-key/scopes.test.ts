import { FIELD_GUARDS } from '../../../src/authz/operations';
import type { Permission } from '../../../src/authz/permissions';
import { codes, startTestApp, type TestApp } from '../../helpers/app';
import { createOrganization, type CreatedOrganization, uniqueEmail } from '../../helpers/factories';
import { createKey } from './api-key-helpers';
import { ORGANIZATION_FIELD_SELECTIONS } from '../../helpers/guarded-fields';

/**
 * A key's permissions are exactly its scopes, through the same generated rules as a member's
 * role: for every guarded field of Organization and Workspace (FIELD_GUARDS, the matrix data), a
 * key holding only what seeing the object needs gets FORBIDDEN at the field, and a key that also
 * holds the field's permission gets it.
 */
let app: TestApp;
let owner: string;
let org: CreatedOrganization;

beforeAll(async () => {
  app = await startTestApp();
  owner = uniqueEmail('owner');
  org = await createOrganization(app, owner);
});
afterAll(async () => {
  await app?.close();
});

const SELECTIONS = ORGANIZATION_FIELD_SELECTIONS;
const WORKSPACE_SELECTIONS: Record<string, string> = { members: 'members { role }', secrets: 'secrets { key }' };

const organizationFields = Object.entries(FIELD_GUARDS.Organization).filter(([field]) => field !== '*') as Array<[string, Permission]>;
const workspaceFields = Object.entries(FIELD_GUARDS.Workspace).filter(([field]) => field !== '*') as Array<[string, Permission]>;

it('every guarded field has a selection here', () => {
  expect(organizationFields.map(([f]) => f).filter((f) => !SELECTIONS[f])).toEqual([]);
  expect(workspaceFields.map(([f]) => f).filter((f) => !WORKSPACE_SELECTIONS[f])).toEqual([]);
});

test.each(organizationFields)('Organization.%s (%s): FORBIDDEN without the scope, answered with it', async (field, permission) => {
  const without = await createKey(app, org.id, ['org.view'], { as: owner });
  const withIt = await createKey(app, org.id, [...new Set<Permission>(['org.view', permission])], { as: owner });
  const document = `query($id: ID!) { organization(id: $id) { id ${SELECTIONS[field]} } }`;
  const refused = await app.gql(document, { id: org.id }, { token: without.secret });
  expect(refused.errors!.map((e) => [e.path?.join('.'), e.extensions?.code])).toEqual([[`organization.${field}`, 'FORBIDDEN']]);
  expect(refused.data!.organization.id).toBe(org.id);
  const granted = await app.gql(document, { id: org.id }, { token: withIt.secret });
  expect(codes(granted)).toEqual([]);
  expect(granted.data!.organization[field]).not.toBeNull();
});

test.each(workspaceFields)('Workspace.%s (%s): FORBIDDEN without the scope, answered with it', async (field, permission) => {
  const without = await createKey(app, org.id, ['org.view', 'workspace.view'], { as: owner });
  const withIt = await createKey(app, org.id, ['org.view', 'workspace.view', permission], { as: owner });
  const document = `query($id: ID!) { workspace(id: $id) { id ${WORKSPACE_SELECTIONS[field]} } }`;
  const refused = await app.gql(document, { id: org.defaultWorkspaceId }, { token: without.secret });
  expect(refused.errors!.map((e) => [e.path?.join('.'), e.extensions?.code])).toEqual([[`workspace.${field}`, 'FORBIDDEN']]);
  const granted = await app.gql(document, { id: org.defaultWorkspaceId }, { token: withIt.secret });
  expect(codes(granted)).toEqual([]);
  expect(granted.data!.workspace[field]).not.toBeNull();
});

it('without org.view the organization itself is FORBIDDEN; without workspace.view a workspace is NOT_FOUND', async () => {
  const noView = await createKey(app, org.id, ['workspace.view'], { as: owner });
  expect(codes(await app.gql(`query($id: ID!) { organization(id: $id) { id } }`, { id: org.id }, { token: noView.secret }))).toEqual(['FORBIDDEN']);
  const noWorkspace = await createKey(app, org.id, ['org.view'], { as: owner });
  expect(codes(await app.gql(`query($id: ID!) { workspace(id: $id) { id } }`, { id: org.defaultWorkspaceId }, { token: noWorkspace.secret }))).toEqual(['NOT_FOUND']);
});
