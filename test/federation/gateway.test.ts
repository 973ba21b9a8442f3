/**
 * The service composed into a supergraph with a second subgraph, queried through a real Apollo
 * gateway over HTTP: the way a federated gateway meets it in production.
 *
 * The second subgraph ("invoicing") is written here: it extends `Organization` with
 * `invoiceEmail` and `invoices`, and its invoices point back at their `Organization`, so the
 * gateway resolves organizations through the service's `_entities` (and the service's
 * organizations through invoicing's `_entities`).
 */
import { randomUUID } from 'node:crypto';
import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { gql } from 'graphql-tag';
import { ok, startTestApp, type TestApp } from '../helpers/app';
import { createOrganization, type CreatedOrganization, uniqueEmail } from '../helpers/factories';

interface Invoice {
  id: string;
  number: string;
  amountCents: number;
  organizationId: string;
}

/** What invoicing knows: invoices keyed by the organization id (it trusts the ids it is given). */
const invoices: Invoice[] = [];
const invoicesOf = (organizationId: string): Invoice[] => invoices.filter((i) => i.organizationId === organizationId);

function startInvoicing(): Promise<{ server: ApolloServer; url: string }> {
  const server = new ApolloServer({
    plugins: [ApolloServerPluginInlineTraceDisabled()],
    schema: buildSubgraphSchema({
      typeDefs: gql`
        extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])

        type Query {
          "The invoices of these organizations, in the order of the ids."
          invoicesFor(organizationIds: [ID!]!): [Invoice!]!
        }

        type Invoice {
          id: ID!
          number: String!
          amountCents: Int!
          "Resolved by the tenant service; null when the caller may not see it."
          organization: Organization
        }

        type Organization @key(fields: "id") {
          id: ID!
          invoiceEmail: String
          invoices: [Invoice!]!
        }
      `,
      resolvers: {
        Query: {
          invoicesFor: (_: unknown, args: { organizationIds: string[] }) => args.organizationIds.flatMap(invoicesOf),
        },
        Invoice: {
          organization: (invoice: Invoice) => ({ __typename: 'Organization', id: invoice.organizationId }),
        },
        Organization: {
          __resolveReference: (ref: { id: string }) => ({ id: ref.id }),
          invoiceEmail: (o: { id: string }) => `billing+${o.id.slice(0, 8)}@example.com`,
          invoices: (o: { id: string }) => invoicesOf(o.id),
        },
      },
    }),
  });
  return startStandaloneServer(server, { listen: { port: 0, host: '127.0.0.1' } }).then(({ url }) => ({ server, url }));
}

/** One request of the gateway to the tenant service, as the gateway saw its response. */
interface TenantCall {
  operationName?: string;
  representations: number;
  /** The service's `x-sql-statements` header (set outside production): statements the request ran. */
  statements: number;
}

interface GatewayContext {
  authorization?: string;
  tenantCalls: TenantCall[];
}

/** Forwards the caller's bearer to every subgraph and records what the tenant service reports. */
class AuthenticatedDataSource extends RemoteGraphQLDataSource<GatewayContext> {
  override willSendRequest({ request, context }: Parameters<NonNullable<RemoteGraphQLDataSource<GatewayContext>['willSendRequest']>>[0]) {
    if (context.authorization) request.http!.headers.set('authorization', context.authorization);
  }
}

class TenantDataSource extends AuthenticatedDataSource {
  override async didReceiveResponse({ response, request, context }: Parameters<NonNullable<RemoteGraphQLDataSource<GatewayContext>['didReceiveResponse']>>[0]) {
    // The gateway's own introspection (`_service`, at start-up) runs without a request context.
    if (!context.tenantCalls) return response;
    const header = response.http?.headers.get('x-sql-statements');
    const representations = request.variables?.representations;
    context.tenantCalls.push({
      operationName: request.operationName,
      representations: Array.isArray(representations) ? representations.length : 0,
      statements: header === null || header === undefined ? Number.NaN : Number(header),
    });
    return response;
  }
}

let app: TestApp;
let invoicing: { server: ApolloServer; url: string };
let gateway: ApolloServer<GatewayContext>;
let gatewayUrl: string;
/** The tenant service's answers to the gateway during the last gateway request. */
let tenantCalls: TenantCall[] = [];

let owner: string;
let mine: CreatedOrganization[];
let foreign: CreatedOrganization;
/** An id no organization has (invoicing still holds an invoice for it). */
const NO_SUCH_ORGANIZATION = randomUUID();

beforeAll(async () => {
  app = await startTestApp();
  invoicing = await startInvoicing();
  gateway = new ApolloServer<GatewayContext>({
    gateway: new ApolloGateway({
      supergraphSdl: new IntrospectAndCompose({
        subgraphs: [
          { name: 'tenant', url: `${app.url}/graphql` },
          { name: 'invoicing', url: invoicing.url },
        ],
      }),
      buildService: ({ name, url }) => (name === 'tenant' ? new TenantDataSource({ url }) : new AuthenticatedDataSource({ url })),
    }),
  });
  const started = await startStandaloneServer(gateway, {
    listen: { port: 0, host: '127.0.0.1' },
    context: async ({ req }) => {
      tenantCalls = [];
      return { authorization: req.headers.authorization, tenantCalls };
    },
  });
  gatewayUrl = started.url;

  owner = uniqueEmail('fed-gw');
  mine = [];
  for (let i = 0; i < 20; i++) mine.push(await createOrganization(app, owner));
  foreign = await createOrganization(app, uniqueEmail('fed-gw-stranger'));
  for (const [i, id] of [...mine.map((o) => o.id), foreign.id, NO_SUCH_ORGANIZATION].entries()) {
    invoices.push({ id: `inv-${i}`, number: `INV-${String(i).padStart(4, '0')}`, amountCents: 1000 * (i + 1), organizationId: id });
  }
}, 60_000);

afterAll(async () => {
  // Each one stopped even if another fails (or never started).
  const results = await Promise.allSettled([gateway?.stop(), invoicing?.server.stop()]);
  await app?.close();
  for (const r of results) if (r.status === 'rejected') throw r.reason;
});

interface GatewayResult {
  status: number;
  data: Record<string, any> | null;
  errors?: Array<{ message: string; path?: Array<string | number>; extensions?: Record<string, any> }>;
}

async function throughGateway(query: string, variables: Record<string, unknown> = {}, as?: string): Promise<GatewayResult> {
  const token = as ? await app.token(as) : undefined;
  const res = await fetch(gatewayUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(20_000),
  });
  const body = (await res.json()) as Omit<GatewayResult, 'status'>;
  return { status: res.status, data: body.data ?? null, errors: body.errors };
}

const gatewayOk = (result: GatewayResult): Record<string, any> => ok({ ...result, headers: new Headers() });

const INVOICES = `query Invoices($ids: [ID!]!) {
  invoicesFor(organizationIds: $ids) {
    number
    organization {
      id
      name
      slug
      memberCount
      workspaces(first: 5) { totalCount nodes { slug environments { slug } } }
    }
  }
}`;

describe('the service behind an Apollo gateway (IntrospectAndCompose, over HTTP)', () => {
  it('joins Organization across both subgraphs, from either side', async () => {
    const [first] = mine;
    const fromTenant = gatewayOk(
      await throughGateway(
        `query Dashboard($slug: String!) { organization(slug: $slug) { id slug invoiceEmail invoices { number amountCents } } }`,
        { slug: first!.slug },
        owner,
      ),
    );
    expect(fromTenant.organization).toEqual({
      id: first!.id,
      slug: first!.slug,
      invoiceEmail: `billing+${first!.id.slice(0, 8)}@example.com`,
      invoices: [{ number: 'INV-0000', amountCents: 1000 }],
    });

    const fromInvoicing = gatewayOk(await throughGateway(INVOICES, { ids: [first!.id] }, owner));
    expect(fromInvoicing.invoicesFor).toEqual([
      {
        number: 'INV-0000',
        organization: {
          id: first!.id,
          name: expect.any(String),
          slug: first!.slug,
          memberCount: 1,
          workspaces: { totalCount: 1, nodes: [{ slug: 'default', environments: [] }] },
        },
      },
    ]);
    // The organization came from the service's _entities, one reference.
    expect(tenantCalls.map((c) => c.representations)).toEqual([1]);
  });

  it('forwards the bearer token to the service, which refuses the request without it', async () => {
    const me = gatewayOk(await throughGateway(`query Me { me { user { email } } }`, {}, owner));
    expect(me.me.user.email).toBe(owner);

    const anonymous = await throughGateway(`query Me { me { user { email } } }`);
    expect(anonymous.data).toBeNull();
    expect(anonymous.errors?.map((e) => e.extensions?.code)).toEqual(['UNAUTHENTICATED']);
    // The service answered the gateway's fetch with HTTP 401.
    expect(anonymous.errors?.[0]?.extensions?.response?.status).toBe(401);

    // An entity fetch without a token is refused too: no organization data, only the invoice.
    const entities = await throughGateway(INVOICES, { ids: [mine[0]!.id] });
    expect(entities.data).toEqual({ invoicesFor: [{ number: 'INV-0000', organization: null }] });
    expect(entities.errors?.map((e) => e.extensions?.code)).toEqual(['UNAUTHENTICATED']);
  });

  it("answers a reference to another tenant's organization, or to none, with null and NOT_FOUND", async () => {
    const result = await throughGateway(INVOICES, { ids: [mine[0]!.id, foreign.id, mine[1]!.id, NO_SUCH_ORGANIZATION] }, owner);
    expect(result.data!.invoicesFor.map((i: any) => [i.number, i.organization?.id ?? null])).toEqual([
      ['INV-0000', mine[0]!.id],
      ['INV-0020', null],
      ['INV-0001', mine[1]!.id],
      ['INV-0021', null],
    ]);
    // The service's errors, passed on by the gateway at the path of the field in the gateway's response.
    const errors = [...(result.errors ?? [])].sort((x, y) => Number(x.path?.[1]) - Number(y.path?.[1]));
    expect(errors.map((e) => [e.extensions?.code, e.message, e.path])).toEqual([
      ['NOT_FOUND', 'Organization not found', ['invoicesFor', 1, 'organization']],
      ['NOT_FOUND', 'Organization not found', ['invoicesFor', 3, 'organization']],
    ]);
    // The two kinds of miss look the same: neither names the id.
    expect(JSON.stringify(result.errors)).not.toContain(foreign.id);
    // Nothing of the foreign organization reached the response, not even its slug or name.
    expect(JSON.stringify(result)).not.toContain(foreign.slug);

    // Through the tenant side as well: asking for the foreign organization by slug.
    const bySlug = await throughGateway(`query Org($slug: String!) { organization(slug: $slug) { id invoiceEmail } }`, { slug: foreign.slug }, owner);
    expect(bySlug.data).toEqual({ organization: null });
    expect(bySlug.errors?.map((e) => e.extensions?.code)).toEqual(['NOT_FOUND']);
  });

  it('resolves a batch of references with as many statements for 20 as for 2', async () => {
    const statementsFor = async (organizations: CreatedOrganization[]) => {
      const result = gatewayOk(await throughGateway(INVOICES, { ids: organizations.map((o) => o.id) }, owner));
      expect(result.invoicesFor.map((i: any) => i.organization.id)).toEqual(organizations.map((o) => o.id));
      expect(result.invoicesFor.every((i: any) => i.organization.workspaces.nodes[0].slug === 'default')).toBe(true);
      // One request to the service carried every reference.
      expect(tenantCalls.map((c) => c.representations)).toEqual([organizations.length]);
      const [call] = tenantCalls;
      expect(Number.isInteger(call!.statements)).toBe(true);
      return call!.statements;
    };
    const two = await statementsFor(mine.slice(0, 2));
    const twenty = await statementsFor(mine);
    expect(two).toBeGreaterThan(0);
    expect(twenty).toBe(two);
  });
});
