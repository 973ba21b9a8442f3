import pino from 'pino';
import { randomUUID } from 'node:crypto';
import { systemPrincipal } from '../../../src/auth/principal';
import type { AppServices } from '../../../src/context';
import { PURGER_ROLE } from '../../../src/database/roles';
import { TenantTransaction } from '../../../src/database/tenant-transaction';
import { signWebhook } from '../../../src/http/billing-webhook';
import { createScheduler } from '../../../src/jobs/jobs';
import { duePurges, purgeOrganization } from '../../../src/jobs/organization-purge.job';
import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll, withAllRows } from '../../helpers/db';
import { addMember, createOrganization, type CreatedOrganization, uniqueEmail } from '../../helpers/factories';
import { concurrently, PARALLEL, RACE_NOTE, ROUNDS } from '../../helpers/races';

/**
 * The purge of a soft-deleted organization (SPEC §5): once `purge_at` has passed (compared with
 * the database's now(); tests move the column into the past), the job removes the organization
 * and every row below it in every tenant table — enumerated from the catalog, so that a table
 * added later is checked too — its audit trail included, logs it, and frees the slug. Another
 * organization is untouched.
 */

let app: TestApp;
let services: AppServices;
const logLines: Array<Record<string, any>> = [];

/** Every table of the schema with an organization_id column, read from the catalog. */
async function tenantTables(): Promise<string[]> {
  const rows = await readAll<{ name: string }>(
    app,
    `SELECT c.relname AS name FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
       AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped) ORDER BY 1`,
  );
  return rows.map((r) => r.name);
}

/** How many users' kept memberships (membership_scopes, which the opening of every request reads) list the organization. */
async function listing(organizationId: string): Promise<number> {
  const [{ n }] = await readAll<{ n: number }>(app, `SELECT count(*)::int AS n FROM membership_scopes WHERE position($1 in organizations) > 0`, [organizationId]);
  return n;
}

/** Rows of one organization per tenant table, plus its organizations row, read on a connection that sees every row. */
async function rowsOf(organizationId: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const [org] = await readAll<{ n: number }>(app, `SELECT count(*)::int AS n FROM organizations WHERE id = $1`, [organizationId]);
  counts.organizations = org!.n;
  for (const table of await tenantTables()) {
    const [row] = await readAll<{ n: number }>(app, `SELECT count(*)::int AS n FROM "${table}" WHERE organization_id = $1`, [organizationId]);
    counts[table] = row!.n;
  }
  return counts;
}

const moveDue = (organizationId: string, sql = `now() - interval '1 second'`) =>
  withAllRows(app, (runner) => runner.query(`UPDATE organizations SET purge_at = ${sql} WHERE id = $1`, [organizationId]));

const DELETE = `mutation($id: ID!, $slug: String!) { deleteOrganization(id: $id, confirmSlug: $slug) { status } }`;
const WEBHOOK_SECRET = 'whsec_purge_0123456789abcdef';

/** A payment provider's signed status event (README, "Billing webhook"). */
async function webhook(organizationId: string, status: string): Promise<void> {
  const raw = JSON.stringify({ id: `evt_${randomUUID()}`, type: 'subscription.status', organizationId, status });
  const timestamp = Math.floor(Date.now() / 1000);
  const res = await fetch(`${app.url}/billing/webhook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'billing-timestamp': String(timestamp), 'billing-signature': signWebhook(WEBHOOK_SECRET, timestamp, raw) },
    body: raw,
  });
  expect(res.status).toBe(200);
}

/**
 * An organization with a row in as many tenant tables as the API can fill today: members, a
 * custom role, workspaces with a grant, a destroyed environment with encrypted credentials (the
 * organization's data key), an invitation with its outbox row, a feature flag override, a paid
 * subscription moved by the billing webhook (its processed event ids) and then cancelled, a quota
 * threshold crossed (its notification rows), notification defaults, overrides, a digest choice and
 * digest items, an organization and a workspace secret, an API key, audit events.
 */
async function populatedOrganization(label: string): Promise<{ org: CreatedOrganization; owner: string }> {
  const owner = uniqueEmail(`${label}-owner`);
  const org = await createOrganization(app, owner);
  const member = uniqueEmail(`${label}-member`);
  const memberId = await addMember(app, org.id, member, 'member');
  // Notification settings: an organization default, a member's override, the owner's digest (billing.status_changed below becomes a digest item).
  ok(await app.gql(`mutation($org: ID!) { setOrganizationNotificationDefault(organizationId: $org, type: "env.deployed", channel: EMAIL) { type } }`, { org: org.id }, { as: owner }));
  ok(await app.gql(`mutation($org: ID!) { setNotificationPreference(organizationId: $org, type: "quota.warning", channel: BOTH) { emailDigest } }`, { org: org.id }, { as: member }));
  ok(await app.gql(`mutation($org: ID!) { setNotificationDigest(organizationId: $org, emailDigest: true) { emailDigest } }`, { org: org.id }, { as: owner }));
  ok(await app.gql(`mutation($org: ID!) { createRole(organizationId: $org, input: { key: "operator", name: "Operator", permissions: ["org.view"] }) { key } }`, { org: org.id }, { as: owner }));
  const ws = ok(await app.gql<{ createWorkspace: { id: string } }>(`mutation($org: ID!) { createWorkspace(organizationId: $org, input: { name: "Payments" }) { id } }`, { org: org.id }, { as: owner })).createWorkspace.id;
  ok(await app.gql(`mutation($ws: ID!, $user: ID!) { setWorkspaceMemberRole(workspaceId: $ws, userId: $user, role: WORKSPACE_ADMIN) { id } }`, { ws, user: memberId }, { as: owner }));
  const env = ok(
    await app.gql<{ createEnvironment: { id: string } }>(
      `mutation($ws: ID!) { createEnvironment(workspaceId: $ws, input: { name: "Prod", tier: PROD, deploymentHost: AWS, resources: { cpu: 0.5, ramMb: 512, diskGb: 5 },
         cloudCredentials: { accessKeyId: "AKIA-PURGE", secretAccessKey: "s3cr3t" } }) { id } }`,
      { ws },
      { as: owner },
    ),
  ).createEnvironment.id;
  ok(await app.gql(`mutation($id: ID!) { destroyEnvironment(id: $id) { id } }`, { id: env }, { as: owner }));
  ok(await app.gql(`mutation($org: ID!) { inviteMember(organizationId: $org, input: { email: "${label}-invitee@example.com", roleKey: "viewer" }) { token } }`, { org: org.id }, { as: owner }));
  ok(await app.gql(`mutation($org: ID!) { setFeatureFlag(organizationId: $org, key: "beta.purge", enabled: true) { key } }`, { org: org.id }, { as: owner }));
  ok(await app.gql(`mutation($org: ID!) { setSecret(organizationId: $org, key: "PURGE_ME", value: "gone") { key } }`, { org: org.id }, { as: owner }));
  ok(await app.gql(`mutation($org: ID!, $ws: ID!) { setSecret(organizationId: $org, workspaceId: $ws, key: "PURGE_ME", value: "gone") { key } }`, { org: org.id, ws }, { as: owner }));
  const apiKey = ok(await app.gql<{ createApiKey: { secret: string } }>(`mutation($org: ID!) { createApiKey(organizationId: $org, input: { name: "ci", scopes: ["org.view"] }) { secret } }`, { org: org.id }, { as: owner })).createApiKey.secret;
  ok(await app.gql(`{ organization(id: "${org.id}") { id } }`, {}, { token: apiKey }));
  ok(await app.gql(`mutation($org: ID!) { changePlan(organizationId: $org, plan: STARTER) { status } }`, { org: org.id }, { as: owner }));
  // STARTER allows 3 workspaces: the third crosses the quota thresholds (audit event and notification row).
  ok(await app.gql(`mutation($org: ID!) { createWorkspace(organizationId: $org, input: { name: "Third" }) { id } }`, { org: org.id }, { as: owner }));
  await webhook(org.id, 'PAST_DUE');
  await webhook(org.id, 'ACTIVE');
  ok(await app.gql(`mutation($org: ID!) { cancelSubscription(organizationId: $org, atPeriodEnd: true) { status } }`, { org: org.id }, { as: owner }));
  return { org, owner };
}

beforeAll(async () => {
  app = await startTestApp({ env: { BILLING_WEBHOOK_SECRET: WEBHOOK_SECRET } });
  const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line)) });
  services = { config: app.config, db: app.db, envelope: app.envelope, logger };
});
afterAll(async () => {
  await app?.close();
});

describe('the purge of a deleted organization', () => {
  let doomed: { org: CreatedOrganization; owner: string };
  let bystander: { org: CreatedOrganization; owner: string };
  let before: Record<string, number>;
  let bystanderBefore: Record<string, number>;

  beforeAll(async () => {
    doomed = await populatedOrganization('doomed');
    bystander = await populatedOrganization('bystander');
    ok(await app.gql(DELETE, { id: doomed.org.id, slug: doomed.org.slug }, { as: doomed.owner }));
    before = await rowsOf(doomed.org.id);
    bystanderBefore = await rowsOf(bystander.org.id);
  });

  it('starts from an organization with rows in every tenant table', () => {
    const empty = Object.entries(before).filter(([, n]) => n === 0).map(([t]) => t);
    expect(empty).toEqual([]);
  });

  it('is not due before purge_at: not listed, and purging it does nothing', async () => {
    expect(await duePurges(services)).not.toContain(doomed.org.id);
    expect(await purgeOrganization(services, doomed.org.id)).toBeNull();
    expect(await rowsOf(doomed.org.id)).toEqual(before);
  });

  it('cannot be forced early: the purge function refuses an organization that is not due, and the service role cannot delete organizations', async () => {
    await TenantTransaction.run(app.db, systemPrincipal(doomed.org.id, 'test'), randomUUID(), async (tx) => {
      expect(await tx.query(`SELECT app_purge_organization($1) AS purged`, [doomed.org.id])).toEqual([{ purged: false }]);
    });
    const denied = await TenantTransaction.run(app.db, systemPrincipal(doomed.org.id, 'test'), randomUUID(), (tx) =>
      tx.query(`DELETE FROM organizations WHERE id = $1`, [doomed.org.id]),
    ).then(
      () => 'deleted',
      (error: { driverError?: { code?: string }; code?: string }) => error.driverError?.code ?? error.code,
    );
    expect(denied).toBe('42501');
    expect(await rowsOf(doomed.org.id)).toEqual(before);
  });

  it('once purge_at has passed, removes the organization and every row of it in every tenant table, audit trail included, and nothing of another organization', async () => {
    await moveDue(doomed.org.id);
    expect(await duePurges(services)).toContain(doomed.org.id);
    expect(await duePurges(services)).not.toContain(bystander.org.id);
    logLines.length = 0;
    // Its owner and member have it in their kept memberships (membership_scopes) until the purge.
    expect(await listing(doomed.org.id)).toBe(2);

    const report = await purgeOrganization(services, doomed.org.id);
    expect(report).toEqual({ organizationId: doomed.org.id, slug: doomed.org.slug, rows: before });

    const after = await rowsOf(doomed.org.id);
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
    expect(Object.entries(after).filter(([, n]) => n !== 0)).toEqual([]);
    expect(await rowsOf(bystander.org.id)).toEqual(bystanderBefore);
    expect(await duePurges(services)).not.toContain(doomed.org.id);
    expect(await listing(doomed.org.id)).toBe(0);
    expect(await listing(bystander.org.id)).toBe(2);
  });

  it('logs the purge in the structured log: organization id, slug and the rows removed per table', () => {
    const purged = logLines.filter((l) => l.event === 'organization.purged');
    expect(purged).toHaveLength(1);
    expect(purged[0]).toMatchObject({ level: 30, msg: 'organization purged', job: 'organization_purge', organizationId: doomed.org.id, slug: doomed.org.slug, rows: before });
    expect(purged[0]!.requestId).toMatch(/^organization_purge:[0-9a-f-]{36}$/);
  });

  it('is idempotent: a second purge finds nothing', async () => {
    expect(await purgeOrganization(services, doomed.org.id)).toBeNull();
  });

  it('leaves the owner nothing to see (NOT_FOUND) and frees the slug for anyone', async () => {
    expect(codes(await app.gql(`query($id: ID!) { organization(id: $id) { id } }`, { id: doomed.org.id }, { as: doomed.owner }))).toEqual(['NOT_FOUND']);
    const taken = ok(
      await app.gql<{ createOrganization: { slug: string } }>(`mutation($slug: String!) { createOrganization(input: { name: "Reborn", slug: $slug }) { slug } }`, { slug: doomed.org.slug }, { as: bystander.owner }),
    );
    expect(taken.createOrganization.slug).toBe(doomed.org.slug);
  });
});

describe('a restored organization', () => {
  it('is not purged, even with a due time left behind in purge_at', async () => {
    const owner = uniqueEmail('restored-owner');
    const org = await createOrganization(app, owner);
    ok(await app.gql(DELETE, { id: org.id, slug: org.slug }, { as: owner }));
    ok(await app.gql(`mutation($id: ID!) { restoreOrganization(id: $id) { status } }`, { id: org.id }, { as: owner }));
    // A due time left behind by hand on an ACTIVE organization does not make it due.
    await moveDue(org.id);
    expect(await duePurges(services)).not.toContain(org.id);
    expect(await purgeOrganization(services, org.id)).toBeNull();
    expect((await rowsOf(org.id)).organizations).toBe(1);
  });
});

describe('the scheduler', () => {
  it('runs the purge as one of its kinds of due work: due organizations purged once, the next run finds nothing', async () => {
    const owner = uniqueEmail('scheduled-owner');
    const org = await createOrganization(app, owner);
    const untouched = await createOrganization(app, owner);
    ok(await app.gql(DELETE, { id: org.id, slug: org.slug }, { as: owner }));
    await moveDue(org.id);
    const due = await duePurges(services);
    expect(due).toContain(org.id);
    const scheduler = createScheduler(services);
    expect(scheduler.registered).toContain('organization_purge');
    expect((await scheduler.runOnce()).organization_purge).toBe(due.length);
    expect(Object.values(await rowsOf(org.id)).every((n) => n === 0)).toBe(true);
    expect((await rowsOf(untouched.id)).organizations).toBe(1);
    expect((await scheduler.runOnce()).organization_purge).toBe(0);
  });
});

describe('concurrent purges', () => {
  it(`purge one organization exactly once, whoever runs it ${RACE_NOTE}`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const owner = uniqueEmail(`race-${round}`);
      const org = await createOrganization(app, owner);
      await addMember(app, org.id, uniqueEmail(`race-member-${round}`), 'viewer');
      ok(await app.gql(DELETE, { id: org.id, slug: org.slug }, { as: owner }));
      await moveDue(org.id);
      const reports = await concurrently(PARALLEL, () => purgeOrganization(services, org.id));
      expect(reports.filter((r) => r !== null)).toHaveLength(1);
      expect(Object.values(await rowsOf(org.id)).every((n) => n === 0)).toBe(true);
    }
  });
});

describe('the purger role and its functions', () => {
  it('owns both SECURITY DEFINER functions, pinned to pg_catalog, and may read only id, status, purge_at of organizations and delete them', async () => {
    const functions = await readAll<{ name: string; owner: string; config: string[] | null; definer: boolean }>(
      app,
      `SELECT p.proname AS name, pg_get_userbyid(p.proowner) AS owner, p.proconfig AS config, p.prosecdef AS definer
       FROM pg_proc p WHERE p.proname IN ('app_purge_organization', 'organizations_due_for_purge') ORDER BY p.proname`,
    );
    expect(functions).toEqual([
      { name: 'app_purge_organization', owner: PURGER_ROLE, config: ['search_path=pg_catalog, pg_temp'], definer: true },
      { name: 'organizations_due_for_purge', owner: PURGER_ROLE, config: ['search_path=pg_catalog, pg_temp'], definer: true },
    ]);
    const [rights] = await readAll<Record<string, boolean>>(
      app,
      `SELECT r.rolcanlogin AS login, r.rolsuper AS super, r.rolbypassrls AS bypass,
              has_column_privilege($1, 'organizations', 'status', 'SELECT') AS status, has_column_privilege($1, 'organizations', 'name', 'SELECT') AS name,
              has_column_privilege($1, 'organizations', 'slug', 'SELECT') AS slug, has_table_privilege($1, 'organizations', 'DELETE') AS delete_orgs,
              has_table_privilege($1, 'organizations', 'UPDATE') AS update_orgs, has_table_privilege($1, 'audit_events', 'SELECT') AS audit,
              has_table_privilege($1, 'memberships', 'DELETE') AS memberships, has_schema_privilege($1, 'public', 'CREATE') AS create_in_schema
       FROM pg_roles r WHERE r.rolname = $1`,
      [PURGER_ROLE],
    );
    expect(rights).toEqual({
      login: false,
      super: false,
      bypass: false,
      status: true,
      name: false,
      slug: false,
      delete_orgs: true,
      update_orgs: false,
      audit: false,
      memberships: false,
      create_in_schema: false,
    });
  });
});

describe('RETENTION_DAYS=0', () => {
  let zero: TestApp;
  beforeAll(async () => {
    zero = await startTestApp({ env: { RETENTION_DAYS: '0' } });
  });
  afterAll(async () => {
    await zero?.close();
  });

  it('makes a deleted organization due at once (purgeAt = deletedAt): the next run purges it', async () => {
    const owner = uniqueEmail('zero-owner');
    const org = await createOrganization(zero, owner);
    const deleted = ok(
      await zero.gql<{ deleteOrganization: { deletedAt: string; purgeAt: string } }>(
        `mutation($id: ID!, $slug: String!) { deleteOrganization(id: $id, confirmSlug: $slug) { deletedAt purgeAt } }`,
        { id: org.id, slug: org.slug },
        { as: owner },
      ),
    ).deleteOrganization;
    expect(deleted.purgeAt).toBe(deleted.deletedAt);
    const zeroServices = { config: zero.config, db: zero.db, envelope: zero.envelope, logger: pino({ level: 'silent' }) };
    expect(await duePurges(zeroServices)).toEqual([org.id]);
    expect(await purgeOrganization(zeroServices, org.id)).toMatchObject({ organizationId: org.id, slug: org.slug });
    expect(codes(await zero.gql(`query($id: ID!) { organization(id: $id) { id } }`, { id: org.id }, { as: owner }))).toEqual(['NOT_FOUND']);
  });
});
