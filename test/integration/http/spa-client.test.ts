/**
 * The typed SPA client example (examples/spa-client) against the running service: the very
 * documents it sends (read from its documents.ts, as GraphQL Code Generator reads them) through
 * its own typed fetch. The type side is checked by `npm run typecheck:examples`; this checks that
 * the documents answer what the example expects (permissions, query cost, shapes).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { parse } from 'graphql';
import { createClient, GraphQLRequestError } from '../../../examples/spa-client/src/client';
import { ok, startTestApp, type TestApp } from '../../helpers/app';
import { createOrganization, type CreatedOrganization, setFeatureFlag, uniqueEmail } from '../../helpers/factories';

/** The example's documents by operation name, as written in its `graphql(...)` calls. */
function exampleDocuments(): Map<string, TypedDocumentNode<any, any>> {
  const source = fs.readFileSync(path.join(__dirname, '../../../examples/spa-client/src/documents.ts'), 'utf8');
  const documents = new Map<string, TypedDocumentNode<any, any>>();
  for (const [, text] of source.matchAll(/graphql\(`([^`]*)`\)/g)) {
    const document = parse(text!);
    const [operation] = document.definitions;
    if (operation?.kind !== 'OperationDefinition' || !operation.name) throw new Error('every example document is one named operation');
    documents.set(operation.name.value, document as TypedDocumentNode<any, any>);
  }
  return documents;
}

let app: TestApp;
let owner: string;
let org: CreatedOrganization;
const documents = exampleDocuments();
const doc = (name: string) => documents.get(name)!;

beforeAll(async () => {
  app = await startTestApp();
  owner = uniqueEmail('spa');
  org = await createOrganization(app, owner);
  // The example creates a RESTRICTED workspace: a plan feature the trial plan (PRO) lacks.
  await setFeatureFlag(app, org.id, 'restricted_workspaces', true, owner);
  ok(
    await app.gql(
      `mutation($ws: ID!) { createEnvironment(workspaceId: $ws, input: { name: "Staging", tier: STAGE, deploymentHost: AWS, resources: { cpu: 0.5, ramMb: 512, diskGb: 1 } }) { id } }`,
      { ws: org.defaultWorkspaceId },
      { as: owner },
    ),
  );
});
afterAll(async () => {
  await app?.close();
});

describe('the typed SPA client example against the service', () => {
  it('holds the three documents the README names', () => {
    expect([...documents.keys()].sort()).toEqual(['CreateWorkspace', 'Me', 'OrganizationDashboard']);
  });

  it('loads the switcher and the dashboard, creates a workspace, and sees it on the dashboard', async () => {
    const request = createClient({ url: `${app.url}/graphql`, token: () => app.token(owner) });

    const { me } = await request(doc('Me'));
    expect(me.user.email).toBe(owner);
    expect(me.memberships).toEqual([{ organization: { id: org.id, slug: org.slug, name: expect.any(String) }, role: { key: 'owner', name: expect.any(String) } }]);

    const before = (await request(doc('OrganizationDashboard'), { slug: org.slug })).organization;
    expect(before.members.totalCount).toBe(1);
    expect(before.members.nodes[0].user.email).toBe(owner);
    expect(before.workspaces.nodes).toEqual([
      {
        id: org.defaultWorkspaceId,
        name: expect.any(String),
        slug: 'default',
        visibility: 'ORGANIZATION',
        environments: [{ id: expect.any(String), name: 'Staging', slug: 'staging', tier: 'STAGE', isActive: true }],
      },
    ]);

    const { createWorkspace } = await request(doc('CreateWorkspace'), { organizationId: org.id, input: { name: 'Payments API', visibility: 'RESTRICTED' } });
    expect(createWorkspace).toEqual({ id: expect.any(String), name: 'Payments API', slug: 'payments-api', visibility: 'RESTRICTED' });

    const after = (await request(doc('OrganizationDashboard'), { slug: org.slug, workspaces: 25 })).organization;
    expect(after.workspaces.totalCount).toBe(2);
    expect(after.workspaces.nodes.map((w: any) => w.slug).sort()).toEqual(['default', 'payments-api']);
  });

  it("reports another tenant's organization as NOT_FOUND and a missing token as UNAUTHENTICATED (401)", async () => {
    const other = await createOrganization(app, uniqueEmail('spa-other'));
    const request = createClient({ url: `${app.url}/graphql`, token: () => app.token(owner) });
    const notFound = await request(doc('OrganizationDashboard'), { slug: other.slug }).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(GraphQLRequestError);
    expect((notFound as GraphQLRequestError<unknown>).codes).toEqual(['NOT_FOUND']);

    const signedOut = createClient({ url: `${app.url}/graphql`, token: () => null });
    const refused = await signedOut(doc('Me')).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(GraphQLRequestError);
    expect((refused as GraphQLRequestError<unknown>).codes).toEqual(['UNAUTHENTICATED']);
    expect((refused as GraphQLRequestError<unknown>).status).toBe(401);
  });
});
