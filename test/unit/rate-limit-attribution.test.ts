import { randomUUID } from "node:crypto";
import {
  type FragmentDefinitionNode,
  Kind,
  type OperationDefinitionNode,
  parse,
} from "graphql";
import {
  rateLimitIdentity,
  type TokenIdentity,
} from "../../src/auth/principal";
import { namedScopes } from "../../src/ratelimit/attribution";

/** What the rate limits attribute a request to (README "Rate limits"): the scopes its root fields name, and the principal's bucket. */
function scopesOf(query: string, variables: Record<string, unknown> = {}) {
  const document = parse(query);
  const operation = document.definitions.find(
    (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
  )!;
  const fragments = Object.fromEntries(
    document.definitions
      .filter(
        (d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION,
      )
      .map((d) => [d.name.value, d]),
  );
  return namedScopes(operation, fragments, variables);
}

const org = randomUUID();
const ws = randomUUID();

describe("namedScopes", () => {
  it("takes the scope argument of each root field from OPERATION_GUARDS (literals and variables)", () => {
    expect(
      scopesOf(
        `mutation($w: ID!) { createWorkspace(organizationId: "${org}", input: { name: "x" }) { id } createEnvironment(workspaceId: $w, input: { name: "e", tier: DEV }) { id } }`,
        { w: ws },
      ),
    ).toEqual([
      { kind: "organization", id: org },
      { kind: "workspace", id: ws },
    ]);
  });

  it("covers the fields guarded by authentication alone that name an organization: organization(id | slug), workspace, environment, leaveOrganization", () => {
    expect(
      scopesOf(
        `query($s: String!) { a: organization(id: "${org}") { id } b: organization(slug: $s) { id } workspace(id: "${ws}") { id } }`,
        { s: "acme" },
      ),
    ).toEqual([
      { kind: "organization", id: org },
      { kind: "organization_slug", id: "acme" },
      { kind: "workspace", id: ws },
    ]);
    expect(
      scopesOf(`mutation { leaveOrganization(organizationId: "${org}") }`),
    ).toEqual([{ kind: "organization", id: org }]);
  });

  it("follows fragments and inline fragments on the root type, and names each scope once", () => {
    expect(
      scopesOf(
        `query { ...F ... on Query { organization(id: "${org}") { id } } } fragment F on Query { again: organization(id: "${org}") { id } }`,
      ),
    ).toEqual([{ kind: "organization", id: org }]);
  });

  it("names nothing for fields outside any organization, nested fields, and ids that are not UUIDs", () => {
    expect(
      scopesOf(
        `{ me { permissions(organizationId: "${org}") } organizations { nodes { id } } }`,
      ),
    ).toEqual([]);
    expect(
      scopesOf(
        `mutation { createOrganization(input: { name: "x" }) { id } acceptInvitation(token: "t") { id } }`,
      ),
    ).toEqual([]);
    expect(
      scopesOf(`query($id: ID!) { organization(id: $id) { id } }`, {
        id: "not-a-uuid",
      }),
    ).toEqual([]);
    expect(
      scopesOf(`query($id: ID!) { organization(id: $id) { id } }`),
    ).toEqual([]);
  });
});

describe("rateLimitIdentity", () => {
  const identity = (subject: string): TokenIdentity => ({
    subject,
    email: "a@b.c",
    emailVerified: true,
    name: null,
    picture: null,
    mfa: false,
    authenticatedAt: null,
  });

  it("counts users by the subject of their token; the service itself and anonymous requests are not limited", () => {
    expect(
      rateLimitIdentity({ kind: "user", identity: identity("auth0|42") }),
    ).toEqual({
      key: "user:auth0|42",
      subject: "auth0|42",
      organizationId: null,
      apiKey: null,
    });
    expect(
      rateLimitIdentity({ kind: "system", organizationId: org, job: "test" }),
    ).toBeNull();
    expect(rateLimitIdentity({ kind: "anonymous" })).toBeNull();
  });

  it("counts an API key in a bucket of the key as presented until the database resolves it (raw key: its hash; exchanged token: its id)", () => {
    const hash = "ab".repeat(32);
    const keyId = "5b0c8f7e-3d1a-4c2b-9e8f-0a1b2c3d4e5f";
    expect(
      rateLimitIdentity({
        kind: "apiKey",
        credential: { via: "secret", hash },
      }),
    ).toEqual({
      key: `apikey:hash:${hash}`,
      subject: null,
      organizationId: null,
      apiKey: { via: "secret", hash },
    });
    expect(
      rateLimitIdentity({
        kind: "apiKey",
        credential: { via: "token", keyId },
      })!.key,
    ).toBe(`apikey:id:${keyId}`);
  });

  it("keeps bucket keys short whatever the subject (a long one is hashed; the subject itself still decides memberships)", () => {
    const long = "x".repeat(600);
    const id = rateLimitIdentity({ kind: "user", identity: identity(long) })!;
    expect(id.key).toMatch(/^user:sha256:[0-9a-f]{64}$/);
    expect(id.subject).toBe(long);
  });
});
