import { parse, getOperationAST } from 'graphql';
import { compilable } from '../../../src/graphql/executor';
import { type GqlResult, ok, startTestApp, type TestApp } from '../../helpers/app';
import { addMember, createOrganization, type CreatedOrganization, setFeatureFlag, setPlanLimits, uniqueEmail } from '../../helpers/factories';

/**
 * Differential test of compiled execution (src/graphql/executor.ts): every document here is one
 * `compilable()` accepts, so its first request is answered by graphql-js and the second and third
 * by graphql-jit. Each (document, principal, variables) is made a document of its own (a trailing
 * comment), so that each has its graphql-js answer; the three answers must be the same, errors
 * compared by message, path, locations and extensions (their order aside, and the errors of fields
 * nulled with their parent: see sameAnswer). It found an answer that never came (a getter that
 * throws, read inline by jit: every field now has a resolver) and the accepted difference.
 */

// Which documents graphql-jit compiled, and how often each compiled function ran.
const mockJitRuns = new Map<string, number>();
const mockJitRefused = new Set<string>();
jest.mock('graphql-jit', () => {
  const actual = jest.requireActual('graphql-jit');
  return {
    ...actual,
    compileQuery: (...args: unknown[]) => {
      const result = actual.compileQuery(...args);
      const body: string = (args[1] as { loc?: { source: { body: string } } }).loc?.source.body ?? '';
      const tag = /# case:(\S+)\s*$/.exec(body)?.[1];
      if (tag && actual.isCompiledQuery(result)) {
        const query = result.query;
        result.query = (...a: unknown[]) => {
          mockJitRuns.set(tag, (mockJitRuns.get(tag) ?? 0) + 1);
          return query(...a);
        };
      } else if (tag) mockJitRefused.add(tag);
      return result;
    },
  };
});

let app: TestApp;

interface Seed {
  a: CreatedOrganization;
  b: CreatedOrganization;
  emails: Record<'ownerA' | 'adminA' | 'memberA' | 'viewerA' | 'ownerB' | 'cross' | 'outsider' | 'invitee', string>;
  userIds: Record<string, string>;
  wsPublic: string;
  wsRestricted: string;
  wsB: string;
  envA: string;
  envProd: string;
  envRestricted: string;
  envDestroyed: string;
  envB: string;
  invitationToken: string;
  invitationId: string;
  keyToken: string;
  publisherToken: string | undefined;
  crossOrgCursor: string;
  membersCursor: string;
  auditCursor: string;
}
let s: Seed;

type Principal = keyof Seed['emails'] | 'anon' | 'key';
const EVERYONE: Principal[] = ['ownerA', 'adminA', 'memberA', 'viewerA', 'ownerB', 'cross', 'outsider', 'anon', 'key'];
const USERS: Principal[] = ['ownerA', 'adminA', 'memberA', 'viewerA', 'ownerB', 'cross', 'outsider'];
const SOME: Principal[] = ['ownerA', 'memberA', 'viewerA', 'ownerB', 'cross', 'key'];

interface Case {
  name: string;
  query: string | ((s: Seed) => string);
  /** Variants of variables (each its own document); [{}] when absent. */
  variables?: (s: Seed) => Array<Record<string, unknown>>;
  as?: Principal[];
  operationName?: string;
}

const must = <T = Record<string, any>>(result: GqlResult<T>, what: string): T => {
  if (result.errors?.length) throw new Error(`${what}: ${JSON.stringify(result.errors)}`);
  return result.data as T;
};

const userId = async (email: string): Promise<string> => ok(await app.gql<{ me: { user: { id: string } } }>(`{ me { user { id } } }`, {}, { as: email })).me.user.id;

async function seed(): Promise<Seed> {
  await setPlanLimits(app, 'PRO', { max_workspaces: null, max_environments: null, max_api_keys: null, max_members: null });
  const emails = {
    ownerA: uniqueEmail('owner-a'),
    adminA: uniqueEmail('admin-a'),
    memberA: uniqueEmail('member-a'),
    viewerA: uniqueEmail('viewer-a'),
    ownerB: uniqueEmail('owner-b'),
    cross: uniqueEmail('cross'),
    outsider: uniqueEmail('outsider'),
    invitee: uniqueEmail('invitee'),
  };
  const a = await createOrganization(app, emails.ownerA, { description: 'Org A', website: 'https://a.example', settings: { timezone: 'Europe/Paris', extra: { tier: 'gold', nested: { n: 1, list: [1, 'two', null] } } } });
  const b = await createOrganization(app, emails.ownerB, { description: 'Org B' });
  const userIds: Record<string, string> = {};
  userIds.ownerA = await userId(emails.ownerA);
  userIds.ownerB = await userId(emails.ownerB);
  userIds.adminA = await addMember(app, a.id, emails.adminA, 'admin');
  userIds.memberA = await addMember(app, a.id, emails.memberA, 'member');
  userIds.viewerA = await addMember(app, a.id, emails.viewerA, 'viewer');
  userIds.cross = await addMember(app, a.id, emails.cross, 'viewer');
  await addMember(app, b.id, emails.cross, 'admin');
  userIds.outsider = await userId(emails.outsider);
  userIds.invitee = await userId(emails.invitee);

  const A = { as: emails.ownerA };
  await setFeatureFlag(app, a.id, 'restricted_workspaces', true, emails.ownerA);
  await setFeatureFlag(app, a.id, 'beta_search', false, emails.ownerA);
  must(
    await app.gql(
      `mutation($id: ID!, $input: UpdateOrganizationInput!) { updateOrganization(id: $id, input: $input) { id } }`,
      { id: a.id, input: { industry: 'Software', branding: { primaryColor: '#112233' }, banner: { message: 'Maintenance tonight', variant: 'WARNING', dismissible: true } } },
      A,
    ),
    'updateOrganization',
  );
  const ws = async (org: string, input: Record<string, unknown>, as: string) =>
    must(await app.gql<{ createWorkspace: { id: string } }>(`mutation($org: ID!, $input: CreateWorkspaceInput!) { createWorkspace(organizationId: $org, input: $input) { id } }`, { org, input }, { as }), 'createWorkspace').createWorkspace.id;
  const wsPublic = await ws(a.id, { name: 'Public', description: 'Everyone sees it' }, emails.ownerA);
  const wsRestricted = await ws(a.id, { name: 'Secret', visibility: 'RESTRICTED' }, emails.ownerA);
  const wsB = await ws(b.id, { name: 'B one' }, emails.ownerB);
  must(
    await app.gql(`mutation($ws: ID!, $u: ID!) { setWorkspaceMemberRole(workspaceId: $ws, userId: $u, role: WORKSPACE_VIEWER) { id } }`, { ws: wsRestricted, u: userIds.memberA }, A),
    'setWorkspaceMemberRole',
  );
  const env = async (workspace: string, input: Record<string, unknown>, as: string) =>
    must(
      await app.gql<{ createEnvironment: { id: string } }>(`mutation($ws: ID!, $input: CreateEnvironmentInput!) { createEnvironment(workspaceId: $ws, input: $input) { id } }`, { ws: workspace, input }, { as }),
      'createEnvironment',
    ).createEnvironment.id;
  const res = { cpu: 0.5, ramMb: 256, diskGb: 1 };
  const envA = await env(a.defaultWorkspaceId, { name: 'dev', tier: 'DEV', resources: res }, emails.ownerA);
  const envProd = await env(wsPublic, { name: 'prod', tier: 'PROD', resources: res, executionBackend: 'k8s' }, emails.ownerA);
  const envRestricted = await env(wsRestricted, { name: 'hidden', tier: 'STAGE', resources: res }, emails.ownerA);
  const envDestroyed = await env(wsPublic, { name: 'gone', tier: 'DEV', resources: res }, emails.ownerA);
  must(await app.gql(`mutation($id: ID!) { destroyEnvironment(id: $id) { id } }`, { id: envDestroyed }, A), 'destroyEnvironment');
  const envB = await env(wsB, { name: 'b-dev', tier: 'DEV', resources: res }, emails.ownerB);

  must(await app.gql(`mutation($org: ID!) { setSecret(organizationId: $org, key: "DB_URL", value: "postgres://x") { key } }`, { org: a.id }, A), 'setSecret');
  must(await app.gql(`mutation($org: ID!, $ws: ID!) { setSecret(organizationId: $org, workspaceId: $ws, key: "DB_URL", value: "postgres://y") { key } }`, { org: a.id, ws: wsPublic }, A), 'setSecret ws');

  const invited = must(
    await app.gql<{ inviteMember: { token: string; invitation: { id: string } } }>(
      `mutation($org: ID!, $input: InviteMemberInput!) { inviteMember(organizationId: $org, input: $input) { token invitation { id } } }`,
      { org: a.id, input: { email: emails.invitee, roleKey: 'member' } },
      A,
    ),
    'inviteMember',
  ).inviteMember;

  const key = async (scopes: string[], name: string) =>
    must(
      await app.gql<{ createApiKey: { secret: string } }>(`mutation($org: ID!, $input: CreateApiKeyInput!) { createApiKey(organizationId: $org, input: $input) { secret } }`, { org: a.id, input: { name, description: 'differential', scopes } }, A),
      'createApiKey',
    ).createApiKey.secret;
  const exchange = async (secret: string) => must(await app.gql<{ exchangeApiKey: { accessToken: string } }>(`mutation($k: String!) { exchangeApiKey(apiKey: $k) { accessToken } }`, { k: secret }), 'exchange').exchangeApiKey.accessToken;
  const keyToken = await exchange(await key(['org.view', 'workspace.view', 'secrets.read'], 'reader'));
  let publisherToken: string | undefined;
  try {
    publisherToken = await exchange(await key(['notifications.publish'], 'publisher'));
    must(
      await app.gql(`mutation($org: ID!, $input: PublishNotificationInput!) { publishNotification(organizationId: $org, input: $input) }`, { org: a.id, input: { type: 'env.deployed', title: 'prod deployed', body: 'v1', metadata: { sha: 'abc', n: 2 }, audience: 'ALL_MEMBERS' } }, { token: publisherToken }),
      'publish',
    );
  } catch (error) {
    // Notifications are a nice-to-have for the comparison.
    console.warn(String(error));
  }

  const crossOrgCursor = must(await app.gql<any>(`{ me { organizations(first: 1) { pageInfo { endCursor } } } }`, {}, { as: emails.cross }), 'cursor').me.organizations.pageInfo.endCursor;
  const membersCursor = must(await app.gql<any>(`query($id: ID!) { organization(id: $id) { members(first: 2) { pageInfo { endCursor } } } }`, { id: a.id }, A), 'cursor').organization.members.pageInfo.endCursor;
  const auditCursor = must(await app.gql<any>(`query($id: ID!) { auditEvents(organizationId: $id, first: 3) { pageInfo { endCursor } } }`, { id: a.id }, A), 'cursor').auditEvents.pageInfo.endCursor;

  return {
    a,
    b,
    emails,
    userIds,
    wsPublic,
    wsRestricted,
    wsB,
    envA,
    envProd,
    envRestricted,
    envDestroyed,
    envB,
    invitationToken: invited.token,
    invitationId: invited.invitation.id,
    keyToken,
    publisherToken,
    crossOrgCursor,
    membersCursor,
    auditCursor,
  };
}

const ORG_SCALARS = `id name slug description website logoUrl industry primaryDomain contactEmail billingEmail supportTier status createdAt updatedAt deletedAt purgeAt isActive`;
const ENV_FIELDS = `id name slug tier deploymentHost executionBackend isActive hasCloudCredentials createdAt updatedAt destroyedAt resources { cpu ramMb diskGb }`;
const WS_FIELDS = `id name slug description isDefault visibility createdAt updatedAt viewerPermissions`;
const AUDIT_NODE = `id organizationId occurredAt action workspaceId resourceType resourceId resourceName changes metadata ipAddress userAgent requestId actor { type id email name }`;
const MISSING_UUID = '00000000-0000-4000-8000-000000000000';

const CASES: Case[] = [
  { name: 'me', query: `{ me { user { id email name avatarUrl createdAt __typename } memberships { id joinedAt role { id key name description isSystem permissions } organization { id slug name } invitedBy { email } } } }`, as: EVERYONE },
  {
    name: 'me.organizations',
    query: `query($first: Int, $after: String) { me { organizations(first: $first, after: $after) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { id slug viewerRole { key } viewerPermissions } } nodes { slug } } } }`,
    variables: (x) => [{}, { first: 1 }, { first: null }, { first: 1, after: x.crossOrgCursor }, { after: null }, { first: 0 }, { first: -1 }, { after: 'garbage' }, { first: 1000 }],
    as: ['cross', 'ownerA', 'outsider', 'key'],
  },
  {
    name: 'Query.organizations',
    query: `query($first: Int, $after: String) { organizations(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { slug memberCount workspaceCount environmentCount } } } }`,
    variables: (x) => [{}, { first: 1 }, { first: 1, after: x.crossOrgCursor }, { first: null, after: null }],
    as: ['cross', 'ownerA', 'anon', 'key'],
  },
  {
    name: 'organization scalars by id and slug, own and other tenant, bad ids',
    query: `query($id: ID, $slug: String) { organization(id: $id, slug: $slug) { ${ORG_SCALARS} memberCount workspaceCount environmentCount owner { id email name } branding { primaryColor secondaryColor accentColor fontFamily } banner { message variant dismissible } } }`,
    variables: (x) => [{ id: x.a.id }, { id: x.b.id }, { slug: x.a.slug }, { slug: x.b.slug }, { id: 'not-a-uuid' }, { id: MISSING_UUID }, {}, { id: null, slug: null }, { id: x.a.id, slug: x.a.slug }, { id: 42 }],
    as: EVERYONE,
  },
  {
    name: 'organization: fields forbidden for some roles',
    query: `query($id: ID!) { organization(id: $id) { slug settings { timezone defaultBranch defaultStorageProvider notificationEmail extra } security { requireMfa sessionTimeoutMinutes ipAllowlist apiKeyMaxLifetimeDays allowUserKeyOverride }
      subscription { id status billingInterval currentPeriodStart currentPeriodEnd trialEndsAt cancelAtPeriodEnd cancelledAt autoRenew plan { key name } scheduledPlan { key } effectiveLimits { maxMembers maxWorkspaces maxEnvironments maxApiKeys maxCpuPerEnvironment maxRamMbPerEnvironment maxDiskGbPerEnvironment totalCpu totalRamMb totalDiskGb auditRetentionDays apiRateLimitPerMinute } organization { slug } }
      deletionImpact { workspaces environments activeEnvironments members pendingInvitations apiKeys secrets blockers }
      roles { id key name description isSystem permissions } viewerRole { key } viewerPermissions notificationDefaults { type channel } } }`,
    variables: (x) => [{ id: x.a.id }, { id: x.b.id }],
    as: EVERYONE,
  },
  {
    name: 'organization members connection with arguments given, omitted and null',
    query: `query($id: ID!, $first: Int, $after: String, $search: String, $roleKey: String) { organization(id: $id) { members(first: $first, after: $after, search: $search, roleKey: $roleKey) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { id joinedAt user { id email name avatarUrl } role { key name } invitedBy { email } organization { slug } } } } } }`,
    variables: (x) => [
      { id: x.a.id },
      { id: x.a.id, first: 2 },
      { id: x.a.id, first: 2, after: x.membersCursor },
      { id: x.a.id, roleKey: 'admin' },
      { id: x.a.id, roleKey: 'nope' },
      { id: x.a.id, search: 'member-a' },
      { id: x.a.id, first: null, after: null, search: null, roleKey: null },
      { id: x.a.id, first: 0 },
      { id: x.a.id, first: -5 },
      { id: x.a.id, after: 'garbage' },
      { id: x.b.id },
    ],
    as: SOME,
  },
  {
    name: 'aliases of the same field with different arguments',
    query: `query($id: ID!) { organization(id: $id) { a: members(first: 1) { totalCount nodes { role { key } } } b: members(first: 3) { nodes { user { email } } } owners: members(roleKey: "owner") { totalCount nodes { user { email } } } all: workspaces { totalCount } one: workspaces(first: 1) { nodes { slug } pageInfo { hasNextPage } } x: slug y: slug } }`,
    variables: (x) => [{ id: x.a.id }, { id: x.b.id }],
    as: SOME,
  },
  {
    name: 'root aliases: several lookups at once',
    query: `query($a: ID!, $b: ID!, $s: String!) { a: organization(id: $a) { slug } b: organization(id: $b) { slug } c: organization(slug: $s) { id } d: organization(slug: "no-such-org") { id } plans { key } }`,
    variables: (x) => [{ a: x.a.id, b: x.b.id, s: x.a.slug }],
    as: EVERYONE,
  },
  {
    name: 'workspaces with nested environments, members and secrets',
    query: `query($id: ID!) { organization(id: $id) { workspaces { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { ${WS_FIELDS}
      environments { ${ENV_FIELDS} workspace { slug } organization { slug } } prod: environments(tier: PROD) { slug } all: environments(includeDestroyed: true) { slug destroyedAt }
      members { user { email } role grantedAt } secrets { key scope workspaceId version createdAt updatedAt updatedBy { email } } organization { slug } } } } } }`,
    variables: (x) => [{ id: x.a.id }, { id: x.b.id }],
    as: EVERYONE,
  },
  {
    name: 'workspaces connection first/after and the lean selection',
    query: `query($id: ID!, $first: Int, $after: String) { organization(id: $id) { workspaces(first: $first, after: $after) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } nodes { id slug } } } }`,
    variables: (x) => [{ id: x.a.id }, { id: x.a.id, first: 1 }, { id: x.a.id, first: 2, after: null }, { id: x.a.id, after: 'garbage' }, { id: x.a.id, first: null }],
    as: SOME,
  },
  {
    name: 'lean list columns with the other fields asked in a fragment on the connection',
    query: `query($id: ID!) { organization(id: $id) { workspaces { nodes { slug } ...Conn } } } fragment Conn on WorkspaceConnection { nodes { description visibility viewerPermissions createdAt } edges { node { isDefault } } }`,
    variables: (x) => [{ id: x.a.id }],
    as: SOME,
  },
  {
    name: 'lean environment columns with the other fields asked in a fragment',
    query: `query($id: ID!) { workspace(id: $id) { environments { slug } ...W } } fragment W on Workspace { environments { hasCloudCredentials executionBackend resources { cpu ramMb diskGb } createdAt } }`,
    variables: (x) => [{ id: x.wsPublic }, { id: x.a.defaultWorkspaceId }],
    as: SOME,
  },
  {
    name: 'workspace by id: own, restricted, other tenant, missing, bad',
    query: `query($id: ID!) { workspace(id: $id) { ${WS_FIELDS} environment(slug: "dev") { id slug } missing: environment(slug: "nope") { id } environments { slug tier } organization { slug workspace(slug: "default") { id } } members { user { email } role } } }`,
    variables: (x) => [{ id: x.a.defaultWorkspaceId }, { id: x.wsPublic }, { id: x.wsRestricted }, { id: x.wsB }, { id: MISSING_UUID }, { id: 'bad' }, { id: '' }],
    as: EVERYONE,
  },
  {
    name: 'environment by id',
    query: `query($id: ID!) { environment(id: $id) { ${ENV_FIELDS} workspace { slug visibility } organization { slug } } }`,
    variables: (x) => [{ id: x.envA }, { id: x.envProd }, { id: x.envRestricted }, { id: x.envDestroyed }, { id: x.envB }, { id: MISSING_UUID }, { id: 'x' }],
    as: EVERYONE,
  },
  {
    name: 'literal ids of another tenant (no variables)',
    query: (x) => `{ a: workspace(id: "${x.wsB}") { slug } b: environment(id: "${x.envB}") { slug } c: organization(id: "${x.b.id}") { slug } d: workspace(id: "${x.wsRestricted}") { slug } e: workspace(id: "${x.wsPublic}") { slug } f: environment(id: "${x.envRestricted}") { slug } }`,
    as: EVERYONE,
  },
  {
    name: 'named fragments on objects, nested, reused',
    query: `query($id: ID!) { organization(id: $id) { ...O workspaces { nodes { ...W } } } me { user { ...U } memberships { organization { ...O } } } }
      fragment O on Organization { id slug owner { ...U } }
      fragment W on Workspace { slug environments { ...E } organization { ...O } }
      fragment E on Environment { slug tier workspace { slug } }
      fragment U on User { id email }`,
    variables: (x) => [{ id: x.a.id }, { id: x.b.id }],
    as: SOME,
  },
  {
    name: 'inline fragments and the same field with different sub-selections merged',
    query: `{ me { user { id } ... on Viewer { user { email } } memberships { organization { ... on Organization { slug } ... on Organization { name owner { id } } owner { email } } role { key } ... { role { name } } } } }`,
    as: USERS,
  },
  {
    name: '__typename everywhere',
    query: `query($id: ID!) { __typename me { __typename user { __typename } } plans { __typename key } organization(id: $id) { __typename workspaces { __typename nodes { __typename } pageInfo { __typename } } } }`,
    variables: (x) => [{ id: x.a.id }],
    as: ['ownerA', 'viewerA', 'outsider', 'anon', 'key'],
  },
  {
    name: 'introspection: __schema',
    query: `{ __schema { queryType { name } mutationType { name } subscriptionType { name } types { name kind } directives { name isRepeatable locations args { name defaultValue type { name kind ofType { name } } } } } }`,
    as: ['ownerA', 'anon'],
  },
  {
    name: 'introspection: __type of an object',
    query: `{ __type(name: "Organization") { name kind description fields(includeDeprecated: true) { name description isDeprecated deprecationReason args { name defaultValue type { name kind ofType { name kind ofType { name kind } } } } type { name kind ofType { name kind ofType { name kind ofType { name } } } } } interfaces { name } } }`,
    as: ['ownerA', 'anon'],
  },
  {
    name: 'introspection: __type by variable',
    query: `query($n: String!) { __type(name: $n) { name kind description specifiedByURL enumValues(includeDeprecated: true) { name isDeprecated } inputFields { name defaultValue type { name kind ofType { name } } } possibleTypes { name } fields { name } } }`,
    variables: () => ['EnvironmentTier', '_Entity', 'AuditEventFilter', 'CreateEnvironmentInput', 'JSONObject', 'DateTime', '_Any', 'Nope'].map((n) => ({ n })),
    as: ['ownerA'],
  },
  {
    name: 'introspection mixed with data and __typename on the root',
    query: `{ __typename __type(name: "Viewer") { name } me { user { email } } t: __type(name: "WorkspaceVisibility") { enumValues { name } } }`,
    as: ['ownerA', 'anon'],
  },
  {
    name: 'plans and the permission catalogue',
    query: `{ plans { key name monthlyPriceCents annualPriceCents features limits { maxMembers maxWorkspaces maxEnvironments maxApiKeys maxCpuPerEnvironment maxRamMbPerEnvironment maxDiskGbPerEnvironment totalCpu totalRamMb totalDiskGb auditRetentionDays apiRateLimitPerMinute } } permissionCatalog { code description } }`,
    as: ['ownerA', 'anon', 'key'],
  },
  {
    name: 'auditEvents with connection arguments and filters (DateTime, JSON)',
    query: `query($org: ID!, $first: Int, $after: String, $filter: AuditEventFilter) { auditEvents(organizationId: $org, first: $first, after: $after, filter: $filter) { pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { ${AUDIT_NODE} } } } }`,
    variables: (x) => [
      { org: x.a.id },
      { org: x.a.id, first: 3 },
      { org: x.a.id, first: 3, after: x.auditCursor },
      { org: x.a.id, filter: { actions: ['workspace.created', 'environment.created'] } },
      { org: x.a.id, filter: { since: '2000-01-01T00:00:00Z', until: '2100-01-01T00:00:00Z' } },
      { org: x.a.id, filter: { since: '2100-01-01T00:00:00Z' } },
      { org: x.a.id, filter: { since: 'not a date' } },
      { org: x.a.id, filter: { resourceType: 'workspace', workspaceId: null } },
      { org: x.a.id, filter: { actorId: x.userIds.ownerA } },
      { org: x.a.id, filter: null, first: null, after: null },
      { org: x.a.id, filter: {} },
      { org: x.b.id },
      { org: 'bad' },
    ],
    as: ['ownerA', 'adminA', 'viewerA', 'ownerB', 'key', 'anon'],
  },
  {
    name: 'auditEvents with a literal filter (no variables inside) and nested under the organization',
    query: `query($org: ID!) { auditEvents(organizationId: $org, filter: { since: "2000-01-01T00:00:00Z", actions: ["workspace.created"] }) { edges { node { action resourceName occurredAt } } } organization(id: $org) { auditEvents(first: 2) { pageInfo { hasNextPage } nodes { action changes metadata actor { type email } } } } }`,
    variables: (x) => [{ org: x.a.id }, { org: x.b.id }],
    as: ['ownerA', 'viewerA', 'cross'],
  },
  {
    name: 'features, API keys, quota, invitations, secrets',
    query: `query($id: ID!, $status: InvitationStatus, $rev: Boolean) { organization(id: $id) { features { key enabled description source }
      apiKeys(includeRevoked: $rev) { id name description prefix scopes createdAt expiresAt revokedAt createdBy { email } }
      quota { resources { resource used limit utilization level } }
      invitations(status: $status) { totalCount pageInfo { hasNextPage } edges { cursor node { id email status createdAt expiresAt acceptedAt role { key } invitedBy { email } organization { slug } } } }
      secrets { key scope workspaceId version updatedBy { email } } } }`,
    variables: (x) => [{ id: x.a.id }, { id: x.a.id, status: 'PENDING' }, { id: x.a.id, status: 'ACCEPTED' }, { id: x.a.id, status: null, rev: null }, { id: x.a.id, rev: true }, { id: x.a.id, status: 'BOGUS' }, { id: x.b.id }],
    as: SOME,
  },
  {
    name: 'an error in one item of a list (settings readable in one organization, not the other)',
    query: `{ me { memberships { role { key } organization { slug settings { timezone extra } security { requireMfa } subscription { status } deletionImpact { blockers } } } } }`,
    as: ['cross', 'ownerA', 'viewerA'],
  },
  {
    name: 'federation _entities with mixed references (variable)',
    query: `query($r: [_Any!]!) { _entities(representations: $r) { __typename ... on Organization { id slug } ... on Workspace { id slug visibility } ... on Environment { id slug tier } ... on User { id email } ... on Subscription { id status } } }`,
    variables: (x) => [
      {
        r: [
          { __typename: 'Organization', id: x.a.id },
          { __typename: 'Organization', id: x.b.id },
          { __typename: 'Workspace', id: x.wsRestricted },
          { __typename: 'Workspace', id: x.wsPublic },
          { __typename: 'Environment', id: x.envB },
          { __typename: 'Environment', id: x.envA },
          { __typename: 'User', id: x.userIds.ownerB },
          { __typename: 'User', id: x.userIds.memberA },
          { __typename: 'User', id: 'nope' },
          { __typename: 'Workspace', id: MISSING_UUID },
        ],
      },
      { r: [] },
      { r: [{ __typename: 'Role', id: 'x' }] },
      { r: [{ __typename: 'Nope', id: 'x' }] },
      { r: [{ id: x.a.id }] },
      { r: { __typename: 'Organization', id: x.a.id } },
    ],
    as: ['ownerA', 'memberA', 'cross', 'outsider', 'key', 'anon'],
  },
  {
    name: 'federation _entities with literal references and _service',
    query: (x) => `{ _entities(representations: [{ __typename: "Organization", id: "${x.a.id}" }, { __typename: "Workspace", id: "${x.wsB}" }, { __typename: "User", id: "${x.userIds.adminA}" }]) { ... on Organization { slug } ... on Workspace { slug } ... on User { email } } _service { sdl } }`,
    as: ['ownerA', 'ownerB', 'anon'],
  },
  {
    name: 'resolveSecrets (API keys with secrets.read only)',
    query: `query($ws: ID!) { resolveSecrets(workspaceId: $ws) { key value scope } }`,
    variables: (x) => [{ ws: x.wsPublic }, { ws: x.a.defaultWorkspaceId }, { ws: x.wsB }, { ws: 'bad' }],
    as: ['key', 'ownerA', 'anon'],
  },
  {
    name: 'deep nesting back and forth',
    query: `query($id: ID!) { organization(id: $id) { workspaces { nodes { organization { workspaces(first: 2) { nodes { environments { workspace { organization { slug owner { email } } } } } } } } } } }`,
    variables: (x) => [{ id: x.a.id }],
    as: ['ownerA', 'viewerA', 'key'],
  },
  {
    name: 'organization.workspace by slug and members of workspaces',
    query: `query($id: ID!, $slug: String!) { organization(id: $id) { workspace(slug: $slug) { slug visibility members { user { email } role } environments(includeDestroyed: true, tier: DEV) { slug destroyedAt } } } }`,
    variables: (x) => [{ id: x.a.id, slug: 'public' }, { id: x.a.id, slug: 'secret' }, { id: x.a.id, slug: 'nope' }, { id: x.b.id, slug: 'b-one' }],
    as: SOME,
  },
  {
    name: 'enum arguments by variable',
    query: `query($id: ID!, $tier: EnvironmentTier, $destroyed: Boolean) { workspace(id: $id) { environments(tier: $tier, includeDestroyed: $destroyed) { slug tier destroyedAt } } }`,
    variables: (x) => [{ id: x.wsPublic }, { id: x.wsPublic, tier: 'PROD' }, { id: x.wsPublic, tier: null }, { id: x.wsPublic, destroyed: true }, { id: x.wsPublic, destroyed: null }, { id: x.wsPublic, tier: 'prod' }],
    as: ['ownerA', 'viewerA'],
  },
  {
    name: 'two operations in one document, chosen by name',
    query: `query One($id: ID!) { organization(id: $id) { ...F } } query Two($id: ID!) { workspace(id: $id) { slug organization { ...F } } } fragment F on Organization { slug name }`,
    variables: (x) => [{ id: x.a.id }],
    operationName: 'One',
    as: ['ownerA', 'outsider'],
  },
  {
    name: 'two operations in one document, the other chosen',
    query: `query One($id: ID!) { organization(id: $id) { ...F } } query Two($id: ID!) { workspace(id: $id) { slug organization { ...F } } } fragment F on Organization { slug name }`,
    variables: (x) => [{ id: x.wsPublic }],
    operationName: 'Two',
    as: ['ownerA', 'outsider'],
  },
  {
    name: 'variables that do not coerce and undeclared variables',
    query: `query($id: ID!, $first: Int) { organization(id: $id) { members(first: $first) { totalCount } } }`,
    variables: (x) => [{ id: x.a.id, first: 2147483648 }, { id: x.a.id, first: 1.5 }, { id: x.a.id, first: '2' }, { id: true }, { id: x.a.id, extra: 1 }, { first: 1 }],
    as: ['ownerA'],
  },
  {
    name: 'invitation preview by token',
    query: `query($t: String!) { invitation(token: $t) { id email status createdAt expiresAt acceptedAt organization { name slug } role { key name } invitedBy { email } } }`,
    variables: (x) => [{ t: x.invitationToken }, { t: 'bogus' }, { t: '' }],
    as: ['invitee', 'ownerA', 'outsider', 'anon'],
  },
  {
    name: 'viewer: permissions, invitations, notification settings and notifications',
    query: `query($org: ID!, $ws: ID, $unread: Boolean, $first: Int) { me { permissions(organizationId: $org, workspaceId: $ws) pendingInvitations { email status organization { slug } role { key } }
      notificationSettings(organizationId: $org) { emailDigest preferences { type channel } }
      notifications(unreadOnly: $unread, first: $first) { totalCount pageInfo { hasNextPage hasPreviousPage } edges { cursor node { id organizationId type title body metadata readAt } } }
      unreadNotificationCount } }`,
    variables: (x) => [{ org: x.a.id }, { org: x.a.id, ws: x.wsRestricted }, { org: x.a.id, ws: x.wsB }, { org: x.b.id }, { org: 'bad' }, { org: x.a.id, ws: null, unread: null, first: null }, { org: x.a.id, unread: true, first: 1 }],
    as: ['ownerA', 'memberA', 'viewerA', 'cross', 'invitee', 'outsider', 'key'],
  },
  // Reductions of the divergences found; last, since a request that never answers keeps its
  // database connection (and transaction) until PostgreSQL ends it.
  {
    name: 'reduced: a non-null root field fails while a sibling fails later',
    query: `query($org: ID!) { auditEvents(organizationId: $org) { pageInfo { hasNextPage } } organization(id: $org) { slug } }`,
    variables: (x) => [{ org: x.b.id }],
    as: ['ownerA'],
  },
  {
    name: 'reduced: a nested non-null field fails while a sibling fails later',
    query: `query($t: String!) { invitation(token: $t) { organization { name description } invitedBy { email } } }`,
    variables: (x) => [{ t: x.invitationToken }],
    as: ['invitee'],
  },
  {
    name: "reduced: a stored field of an invitation's organization preview (a getter that throws)",
    query: `query($t: String!) { invitation(token: $t) { organization { slug } } }`,
    variables: (x) => [{ t: x.invitationToken }],
    as: ['invitee'],
  },
  {
    name: "reduced: the organization of one's pending invitations",
    query: `{ me { pendingInvitations { organization { id } } } }`,
    as: ['invitee'],
  },
];

const principalOptions = (p: Principal): { as?: string; token?: string } => {
  if (p === 'anon') return {};
  if (p === 'key') return { token: s.keyToken };
  return { as: s.emails[p] };
};

const REQUEST_TIMEOUT_MS = 5_000;

interface Sent {
  status: number;
  body: { data?: unknown; errors?: Array<Record<string, any>> };
}

async function send(query: string, variables: Record<string, unknown>, principal: Principal, operationName?: string): Promise<Sent> {
  const { as, token } = principalOptions(principal);
  const bearer = token ?? (as ? await app.token(as) : undefined);
  try {
    const res = await fetch(`${app.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
      body: JSON.stringify({ query, variables, ...(operationName ? { operationName } : {}) }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    return { status: res.status, body: (await res.json()) as Sent['body'] };
  } catch (error) {
    // No answer at all (the request hangs): a divergence of its own.
    if ((error as Error).name === 'TimeoutError') return { status: 0, body: { data: 'NO ANSWER WITHIN 5 s' } };
    throw error;
  }
}

/** The answer as compared: errors sorted by path and message, the per-request id of an internal error left out. */
function comparable(sent: Sent): { status: number; data: string; errors: unknown[] | undefined } {
  const errors = sent.body.errors?.map((e) => {
    const { requestId: _r, ...extensions } = (e.extensions ?? {}) as Record<string, unknown>;
    return { message: e.message, path: e.path, locations: e.locations, extensions };
  });
  errors?.sort((x, y) => {
    const kx = `${JSON.stringify(x.path ?? [])} ${x.message}`;
    const ky = `${JSON.stringify(y.path ?? [])} ${y.message}`;
    return kx < ky ? -1 : kx > ky ? 1 : 0;
  });
  // Serialized: the order of keys in data is part of the answer.
  return { status: sent.status, data: JSON.stringify(sent.body.data), errors };
}

type Answer = ReturnType<typeof comparable>;

/** Whether the response holds null at this path or above it (the error's field was nulled with its parent). */
function nulledAt(data: unknown, path: unknown): boolean {
  let at: unknown = data;
  for (const key of Array.isArray(path) ? path : []) {
    if (at === null || at === undefined) return true;
    at = (at as Record<string | number, unknown>)[key as string | number];
  }
  return at === null || at === undefined;
}

/**
 * The same answer: status and data identical, errors identical, except for errors of fields
 * whose data was nulled anyway. When a non-null field's error nulls its parent, graphql-js stops
 * waiting for the parent's other fields and reports their errors only if they came first (its
 * answer depends on timing); jit waits for them and reports them all. Accepted, like the order.
 */
function sameAnswer(a: Answer, b: Answer): boolean {
  if (a.status !== b.status || a.data !== b.data) return false;
  const key = (e: unknown) => JSON.stringify(e);
  const ka = new Set((a.errors ?? []).map(key));
  const kb = new Set((b.errors ?? []).map(key));
  const data = JSON.parse(a.data ?? 'null') as unknown;
  const extras = [...(a.errors ?? []).filter((e) => !kb.has(key(e))), ...(b.errors ?? []).filter((e) => !ka.has(key(e)))];
  return extras.every((e) => nulledAt(data, (e as { path?: unknown }).path));
}

interface Instance {
  tag: string;
  caseName: string;
  principal: Principal;
  query: string;
  variables: Record<string, unknown>;
  operationName?: string;
}

function instancesOf(c: Case, index: number): Instance[] {
  const out: Instance[] = [];
  const variants = c.variables ? c.variables(s) : [{}];
  const base = typeof c.query === 'function' ? c.query(s) : c.query;
  for (const principal of c.as ?? EVERYONE) {
    variants.forEach((variables, v) => {
      const tag = `${index}.${principal}.${v}`;
      out.push({ tag, caseName: c.name, principal, query: `${base}\n# case:${tag}`, variables, operationName: c.operationName });
    });
  }
  return out;
}

beforeAll(async () => {
  app = await startTestApp({ env: { RATE_LIMITS: 'false' } });
  s = await seed();
}, 120_000);
afterAll(async () => {
  await app?.close();
}, 30_000);

describe('graphql-jit answers every compilable query exactly as graphql-js does', () => {
  it('every document of this test is one compilable() accepts', () => {
    for (const [i, c] of CASES.entries()) {
      const text = typeof c.query === 'function' ? c.query(s) : c.query;
      const document = parse(text);
      const operation = getOperationAST(document, c.operationName);
      expect([c.name, operation && compilable(document, operation)]).toEqual([c.name, true]);
      void i;
    }
  });

  it.each(CASES.map((c, i) => [c.name, i] as const))('%s', async (_name, index) => {
    const divergences: unknown[] = [];
    for (const instance of instancesOf(CASES[index]!, index)) {
      const { query, variables, principal, operationName, tag } = instance;
      const first = comparable(await send(query, variables, principal, operationName));
      const second = comparable(await send(query, variables, principal, operationName));
      const third = comparable(await send(query, variables, principal, operationName));
      const runs = mockJitRuns.get(tag) ?? 0;
      // A request without an answer (status 0) fails the comparison even when all three have none (a stuck connection).
      if (first.status === 0 || !sameAnswer(first, second) || !sameAnswer(second, third)) {
        divergences.push({ principal, variables, compiledRuns: runs, graphqlJs: first, jit: second, ...(sameAnswer(second, third) ? {} : { jitThird: third }) });
      }
      // The second and third requests ran compiled (not refused by jit); none did when the request
      // was refused before execution (validation, or variables Apollo coerces first).
      const executed = first.data !== undefined;
      expect({ tag, refused: mockJitRefused.has(tag), compiledRuns: runs, ...(executed ? {} : { first }) }).toEqual({ tag, refused: false, compiledRuns: executed ? 2 : 0, ...(executed ? {} : { first }) });
    }
    if (divergences.length) console.log(`${CASES[index]!.name}\n${JSON.stringify(divergences, null, 1)}`);
    expect(divergences).toEqual([]);
  });
});
