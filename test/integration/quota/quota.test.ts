import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { RequestContext } from '../../../src/context';
import { PlanKey } from '../../../src/modules/billing/plan.types';
import { QuotaChecker } from '../../../src/modules/quota/quota.checker';
import { readAll, withAllRows } from '../../helpers/db';
import { ok, type GqlResult } from '../../helpers/app';
import { setPlanLimits, uniqueEmail } from '../../helpers/factories';
import { concurrently, outcomes, RACE_NOTE, ROUNDS } from '../../helpers/races';
import { ACCEPT, createOrg, INVITE, invite, REVOKE, startInvitationApp, userId, type InvitationApp } from '../invitation/invitation-helpers';

/**
 * Quotas (SPEC §5): every create that consumes a resource goes through one checker, serialised
 * per organization in the database. Limits come from the organization's plan — every new
 * organization is on PRO (the trial plan) — so each test sets PRO's limits in this file's own
 * database to what it needs (the catalogue is data; the checker reads it on every create).
 */
let t: InvitationApp;
beforeAll(async () => {
  t = await startInvitationApp();
});
afterAll(async () => {
  await t?.app.close();
});

const PRO_DEFAULTS = {
  max_members: 50,
  max_workspaces: 10,
  max_environments: 30,
  max_api_keys: 50,
  max_cpu_per_environment: 4,
  max_ram_mb_per_environment: 8192,
  max_disk_gb_per_environment: 50,
  total_cpu: 20,
  total_ram_mb: 40960,
  total_disk_gb: 200,
};
type Limits = Partial<Record<keyof typeof PRO_DEFAULTS, number | null>>;

/** PRO's limits for the next test: the defaults of SPEC §5 overlaid by `limits`. */
async function setProLimits(limits: Limits): Promise<void> {
  await setPlanLimits(t.app, 'PRO', { ...PRO_DEFAULTS, ...limits });
}
afterEach(() => setProLimits({}));

const QUOTA = `query($id: ID!) { organization(id: $id) { quota { resources { resource used limit utilization level } } } }`;
const CREATE_WS = `mutation($org: ID!, $input: CreateWorkspaceInput!) { createWorkspace(organizationId: $org, input: $input) { id slug } }`;
const WORKSPACES = `query($id: ID!) { organization(id: $id) { workspaces(first: 50) { nodes { id isDefault } } } }`;
const CREATE_ENV = `mutation($ws: ID!, $input: CreateEnvironmentInput!) { createEnvironment(workspaceId: $ws, input: $input) { id resources { cpu ramMb diskGb } } }`;
const UPDATE_ENV = `mutation($id: ID!, $input: UpdateEnvironmentInput!) { updateEnvironment(id: $id, input: $input) { id resources { cpu ramMb diskGb } } }`;
const DESTROY_ENV = `mutation($id: ID!) { destroyEnvironment(id: $id) { id isActive } }`;

const quotaError = (r: GqlResult) => {
  const e = r.errors?.[0]?.extensions ?? {};
  return { code: e.code, resource: e.resource, used: e.used, limit: e.limit, scope: e.scope };
};

interface Org {
  id: string;
  owner: string;
  workspaceId: string;
}
async function newOrg(label: string): Promise<Org> {
  const owner = uniqueEmail(label);
  const id = await createOrg(t, owner, `Quota ${label}`);
  const workspaceId = ok(await t.as(owner, WORKSPACES, { id })).organization.workspaces.nodes[0].id as string;
  return { id, owner, workspaceId };
}

const res = (cpu: number, ramMb = 256, diskGb = 1) => ({ cpu, ramMb, diskGb });
const createEnv = (org: Org, name: string, resources = res(0.5)) => t.as(org.owner, CREATE_ENV, { ws: org.workspaceId, input: { name, tier: 'DEV', resources } });

async function quotaOf(org: Org): Promise<Record<string, { used: number; limit: number | null; utilization: number | null; level: string }>> {
  const rows = ok(await t.as(org.owner, QUOTA, { id: org.id })).organization.quota.resources as Array<{ resource: string; used: number; limit: number | null; utilization: number | null; level: string }>;
  return Object.fromEntries(rows.map(({ resource, ...rest }) => [resource, rest]));
}

const count = async (sql: string, params: unknown[]): Promise<number> => (await readAll<{ n: number }>(t.app, sql, params))[0]!.n;
const activeEnvironments = (org: Org) => count(`SELECT count(*)::int AS n FROM environments WHERE organization_id = $1 AND is_active`, [org.id]);
const thresholdEvents = (org: Org) =>
  readAll<{ metadata: Record<string, unknown> }>(t.app, `SELECT metadata FROM audit_events WHERE organization_id = $1 AND action = 'quota.threshold_crossed' ORDER BY occurred_at, id`, [org.id]);
const notifications = (org: Org) =>
  readAll<{ type: string; payload: Record<string, unknown> }>(t.app, `SELECT type, payload FROM notification_events WHERE organization_id = $1 ORDER BY created_at, id`, [org.id]);

describe('Organization.quota', () => {
  it('lists every resource with used, the plan limit, utilization and level', async () => {
    const org = await newOrg('q-read');
    expect(await quotaOf(org)).toEqual({
      MEMBERS: { used: 1, limit: 50, utilization: 0.02, level: 'OK' },
      WORKSPACES: { used: 1, limit: 10, utilization: 0.1, level: 'OK' },
      ENVIRONMENTS: { used: 0, limit: 30, utilization: 0, level: 'OK' },
      API_KEYS: { used: 0, limit: 50, utilization: 0, level: 'OK' },
      CPU: { used: 0, limit: 20, utilization: 0, level: 'OK' },
      RAM_MB: { used: 0, limit: 40960, utilization: 0, level: 'OK' },
      DISK_GB: { used: 0, limit: 200, utilization: 0, level: 'OK' },
    });
    ok(await createEnv(org, 'a', res(1.5, 1024, 10)));
    ok(await createEnv(org, 'b', res(0.25, 512, 5)));
    await invite(t, org.owner, org.id, uniqueEmail('q-read-invitee'));
    const quota = await quotaOf(org);
    expect(quota.MEMBERS).toMatchObject({ used: 2 });
    expect(quota.ENVIRONMENTS).toMatchObject({ used: 2 });
    expect(quota.CPU).toMatchObject({ used: 1.75, utilization: 1.75 / 20 });
    expect(quota.RAM_MB).toMatchObject({ used: 1536 });
    expect(quota.DISK_GB).toMatchObject({ used: 15 });
  });

  it('shows null limits (unlimited) and level OK when the plan has no limit', async () => {
    await setProLimits({ max_environments: null, total_cpu: null });
    const org = await newOrg('q-unlimited');
    ok(await createEnv(org, 'a'));
    const quota = await quotaOf(org);
    expect(quota.ENVIRONMENTS).toEqual({ used: 1, limit: null, utilization: null, level: 'OK' });
    expect(quota.CPU).toEqual({ used: 0.5, limit: null, utilization: null, level: 'OK' });
  });

  it('levels at 79 %, 80 %, 95 % and 100 % of a limit: OK, WARNING, ALERT, BLOCKED', async () => {
    await setProLimits({ max_cpu_per_environment: 100, total_cpu: 100 });
    const org = await newOrg('q-levels');
    const env = ok(await createEnv(org, 'big', res(79))).createEnvironment.id as string;
    const steps: Array<[number, string]> = [[79, 'OK'], [79.999, 'OK'], [80, 'WARNING'], [94.999, 'WARNING'], [95, 'ALERT'], [99.999, 'ALERT'], [100, 'BLOCKED']];
    for (const [cpu, level] of steps) {
      ok(await t.as(org.owner, UPDATE_ENV, { id: env, input: { resources: res(cpu) } }));
      expect({ cpu, quota: (await quotaOf(org)).CPU }).toEqual({ cpu, quota: { used: cpu, limit: 100, utilization: cpu / 100, level } });
    }
  });
});

describe('each resource at its limit', () => {
  it('WORKSPACES: the default workspace counts; one more than the limit is QUOTA_EXCEEDED and nothing is written', async () => {
    await setProLimits({ max_workspaces: 2 });
    const org = await newOrg('q-ws');
    ok(await t.as(org.owner, CREATE_WS, { org: org.id, input: { name: 'second' } }));
    const over = await t.as(org.owner, CREATE_WS, { org: org.id, input: { name: 'third' } });
    expect(quotaError(over)).toEqual({ code: 'QUOTA_EXCEEDED', resource: 'WORKSPACES', used: 2, limit: 2, scope: 'ORGANIZATION' });
    expect(over.data).toBeNull();
    expect(await count(`SELECT count(*)::int AS n FROM workspaces WHERE organization_id = $1`, [org.id])).toBe(2);
    expect(await count(`SELECT count(*)::int AS n FROM audit_events WHERE organization_id = $1 AND action = 'workspace.created'`, [org.id])).toBe(1);
    expect((await quotaOf(org)).WORKSPACES).toEqual({ used: 2, limit: 2, utilization: 1, level: 'BLOCKED' });
  });

  it('ENVIRONMENTS: counts active environments; a destroyed one releases its place at once', async () => {
    await setProLimits({ max_environments: 2 });
    const org = await newOrg('q-env');
    const first = ok(await createEnv(org, 'one')).createEnvironment.id as string;
    ok(await createEnv(org, 'two'));
    expect(quotaError(await createEnv(org, 'three'))).toEqual({ code: 'QUOTA_EXCEEDED', resource: 'ENVIRONMENTS', used: 2, limit: 2, scope: 'ORGANIZATION' });
    ok(await t.as(org.owner, DESTROY_ENV, { id: first }));
    expect((await quotaOf(org)).ENVIRONMENTS).toMatchObject({ used: 1, level: 'OK' });
    expect((await quotaOf(org)).CPU).toMatchObject({ used: 0.5 });
    ok(await createEnv(org, 'three'));
    expect(await activeEnvironments(org)).toBe(2);
  });

  it('per-environment CPU, RAM and disk: above the plan maximum is QUOTA_EXCEEDED (scope ENVIRONMENT, used = the value asked for)', async () => {
    const org = await newOrg('q-per-env');
    expect(quotaError(await createEnv(org, 'cpu', res(4.001)))).toEqual({ code: 'QUOTA_EXCEEDED', resource: 'CPU', used: 4.001, limit: 4, scope: 'ENVIRONMENT' });
    expect(quotaError(await createEnv(org, 'ram', res(1, 8193)))).toEqual({ code: 'QUOTA_EXCEEDED', resource: 'RAM_MB', used: 8193, limit: 8192, scope: 'ENVIRONMENT' });
    expect(quotaError(await createEnv(org, 'disk', res(1, 512, 51)))).toEqual({ code: 'QUOTA_EXCEEDED', resource: 'DISK_GB', used: 51, limit: 50, scope: 'ENVIRONMENT' });
    ok(await createEnv(org, 'max', res(4, 8192, 50)));
    expect(await activeEnvironments(org)).toBe(1);
  });

  it('totals of CPU, RAM and disk over active environments: the create that would pass the total is refused, one that reaches it exactly passes', async () => {
    await setProLimits({ total_cpu: 2, total_ram_mb: 2048, total_disk_gb: 10 });
    const org = await newOrg('q-totals');
    ok(await createEnv(org, 'a', res(1.4, 1024, 4)));
    expect(quotaError(await createEnv(org, 'b', res(0.7, 256, 1)))).toEqual({ code: 'QUOTA_EXCEEDED', resource: 'CPU', used: 1.4, limit: 2, scope: 'ORGANIZATION' });
    expect(quotaError(await createEnv(org, 'b', res(0.5, 1025, 1)))).toEqual({ code: 'QUOTA_EXCEEDED', resource: 'RAM_MB', used: 1024, limit: 2048, scope: 'ORGANIZATION' });
    expect(quotaError(await createEnv(org, 'b', res(0.5, 1024, 7)))).toEqual({ code: 'QUOTA_EXCEEDED', resource: 'DISK_GB', used: 4, limit: 10, scope: 'ORGANIZATION' });
    // 1.4 + 0.6 = 2.0 exactly (decimal arithmetic, not 1.9999999999999998).
    ok(await createEnv(org, 'b', res(0.6, 1024, 6)));
    expect(await quotaOf(org)).toMatchObject({ CPU: { used: 2, level: 'BLOCKED' }, RAM_MB: { used: 2048, level: 'BLOCKED' }, DISK_GB: { used: 10, level: 'BLOCKED' } });
    expect(quotaError(await createEnv(org, 'c', res(0.1, 64, 1)))).toMatchObject({ code: 'QUOTA_EXCEEDED', resource: 'CPU' });
  });

  it('updateEnvironment: growing past a total or a per-environment maximum is refused; shrinking always passes', async () => {
    await setProLimits({ total_cpu: 3 });
    const org = await newOrg('q-update');
    const a = ok(await createEnv(org, 'a', res(1))).createEnvironment.id as string;
    ok(await createEnv(org, 'b', res(1.5)));
    const grow = await t.as(org.owner, UPDATE_ENV, { id: a, input: { resources: res(1.6) } });
    expect(quotaError(grow)).toEqual({ code: 'QUOTA_EXCEEDED', resource: 'CPU', used: 2.5, limit: 3, scope: 'ORGANIZATION' });
    const stored = await readAll<{ cpu: string }>(t.app, `SELECT cpu FROM environments WHERE id = $1`, [a]);
    expect(Number(stored[0]!.cpu)).toBe(1);
    ok(await t.as(org.owner, UPDATE_ENV, { id: a, input: { resources: res(1.5) } }));
    expect(quotaError(await t.as(org.owner, UPDATE_ENV, { id: a, input: { resources: res(1.5, 8193) } }))).toEqual({
      code: 'QUOTA_EXCEEDED', resource: 'RAM_MB', used: 8193, limit: 8192, scope: 'ENVIRONMENT',
    });
    // Over a lowered limit: shrinking still works, growing does not.
    await setProLimits({ total_cpu: 1 });
    ok(await t.as(org.owner, UPDATE_ENV, { id: a, input: { resources: res(0.5) } }));
    ok(await t.as(org.owner, UPDATE_ENV, { id: a, input: { name: 'renamed' } }));
    expect(quotaError(await t.as(org.owner, UPDATE_ENV, { id: a, input: { resources: res(0.6) } }))).toMatchObject({ code: 'QUOTA_EXCEEDED', resource: 'CPU', used: 2 });
  });

  it('MEMBERS: memberships plus pending invitations; replacing a pending invitation takes over its seat; a revoked one frees it; accepting needs no new seat', async () => {
    await setProLimits({ max_members: 3 });
    const org = await newOrg('q-members');
    const first = uniqueEmail('q-m1');
    const ticket = await invite(t, org.owner, org.id, first);
    const second = await invite(t, org.owner, org.id, uniqueEmail('q-m2'));
    const over = await t.as(org.owner, INVITE, { org: org.id, input: { email: uniqueEmail('q-m3'), roleKey: 'member' } });
    expect(quotaError(over)).toEqual({ code: 'QUOTA_EXCEEDED', resource: 'MEMBERS', used: 3, limit: 3, scope: 'ORGANIZATION' });
    // A new invitation for the same address replaces the pending one: no new seat.
    const replaced = await invite(t, org.owner, org.id, first);
    expect((await quotaOf(org)).MEMBERS).toEqual({ used: 3, limit: 3, utilization: 1, level: 'BLOCKED' });
    // Accepting turns a pending seat into a membership: still 3 of 3, allowed.
    await userId(t, first);
    ok(await t.as(first, ACCEPT, { token: replaced.token }));
    expect(ticket.token).not.toBe(replaced.token);
    expect((await quotaOf(org)).MEMBERS).toMatchObject({ used: 3 });
    ok(await t.as(org.owner, REVOKE, { id: second.invitation.id }));
    expect((await quotaOf(org)).MEMBERS).toMatchObject({ used: 2, level: 'OK' });
    await invite(t, org.owner, org.id, uniqueEmail('q-m4'));
    expect(await count(`SELECT count(*)::int AS n FROM invitations WHERE organization_id = $1 AND status = 'PENDING'`, [org.id])).toBe(1);
  });

  it('an expired pending invitation holds no seat', async () => {
    await setProLimits({ max_members: 2 });
    const org = await newOrg('q-expired');
    const ticket = await invite(t, org.owner, org.id, uniqueEmail('q-e1'));
    expect(quotaError(await t.as(org.owner, INVITE, { org: org.id, input: { email: uniqueEmail('q-e2'), roleKey: 'member' } }))).toMatchObject({ code: 'QUOTA_EXCEEDED', resource: 'MEMBERS' });
    await withAllRows(t.app, (runner) => runner.query(`UPDATE invitations SET expires_at = now() - interval '1 minute' WHERE id = $1`, [ticket.invitation.id]));
    expect((await quotaOf(org)).MEMBERS).toMatchObject({ used: 1 });
    await invite(t, org.owner, org.id, uniqueEmail('q-e2'));
  });
});

describe('threshold events', () => {
  it('crossing 80 % and 100 % upwards writes exactly one quota.threshold_crossed event and one notification each; staying above writes none; a new crossing writes again', async () => {
    await setProLimits({ max_environments: 5 });
    const org = await newOrg('q-thresholds');
    const ids: string[] = [];
    for (let i = 0; i < 3; i += 1) ids.push(ok(await createEnv(org, `e${i}`)).createEnvironment.id);
    expect(await thresholdEvents(org)).toEqual([]);
    ids.push(ok(await createEnv(org, 'e3')).createEnvironment.id); // 4 of 5 = 80 %
    expect((await thresholdEvents(org)).map((e) => e.metadata)).toEqual([{ resource: 'ENVIRONMENTS', level: 'WARNING', threshold: 80, used: 4, limit: 5 }]);
    ids.push(ok(await createEnv(org, 'e4')).createEnvironment.id); // 5 of 5 = 100 %
    expect((await thresholdEvents(org)).map((e) => e.metadata)).toEqual([
      { resource: 'ENVIRONMENTS', level: 'WARNING', threshold: 80, used: 4, limit: 5 },
      { resource: 'ENVIRONMENTS', level: 'BLOCKED', threshold: 100, used: 5, limit: 5 },
    ]);
    // Refused creates and creates that cross nothing write none.
    expect(quotaError(await createEnv(org, 'e5'))).toMatchObject({ code: 'QUOTA_EXCEEDED' });
    ok(await t.as(org.owner, DESTROY_ENV, { id: ids[4] })); // 4 of 5: still above 80 %
    ok(await t.as(org.owner, DESTROY_ENV, { id: ids[3] })); // 3 of 5: below again
    expect(await thresholdEvents(org)).toHaveLength(2);
    ok(await createEnv(org, 'again')); // 4 of 5: a new crossing of 80 %
    expect(await thresholdEvents(org)).toHaveLength(3);
    expect((await notifications(org)).map((n) => [n.type, n.payload.resource, n.payload.used])).toEqual([
      ['quota.warning', 'ENVIRONMENTS', 4],
      ['quota.blocked', 'ENVIRONMENTS', 5],
      ['quota.warning', 'ENVIRONMENTS', 4],
    ]);
    // The environment's own audit event is still there: one environment.created per create.
    expect(await count(`SELECT count(*)::int AS n FROM audit_events WHERE organization_id = $1 AND action = 'environment.created'`, [org.id])).toBe(6);
  });

  it('one create crossing both thresholds at once writes both events', async () => {
    await setProLimits({ max_cpu_per_environment: 10, total_cpu: 10 });
    const org = await newOrg('q-both');
    ok(await createEnv(org, 'all', res(10)));
    // Both are written in one transaction (same occurred_at): ordered by threshold here.
    const events = (await thresholdEvents(org)).map((e) => e.metadata).sort((a, b) => Number(a.threshold) - Number(b.threshold));
    expect(events).toEqual([
      { resource: 'CPU', level: 'WARNING', threshold: 80, used: 10, limit: 10 },
      { resource: 'CPU', level: 'BLOCKED', threshold: 100, used: 10, limit: 10 },
    ]);
  });
});

describe('error precedence (SPEC §6)', () => {
  it('FORBIDDEN before QUOTA_EXCEEDED; BAD_USER_INPUT before QUOTA_EXCEEDED; QUOTA_EXCEEDED before CONFLICT', async () => {
    await setProLimits({ max_workspaces: 1, max_environments: 0 });
    const org = await newOrg('q-precedence');
    const viewer = uniqueEmail('q-viewer');
    const ticket = await invite(t, org.owner, org.id, viewer, 'viewer');
    ok(await t.as(viewer, ACCEPT, { token: ticket.token }));
    await setProLimits({ max_workspaces: 1, max_environments: 0, max_members: 2 });
    // Over the workspace, environment and member quota, without the permission: FORBIDDEN.
    expect((await t.as(viewer, CREATE_WS, { org: org.id, input: { name: 'x' } })).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await t.as(viewer, CREATE_ENV, { ws: org.workspaceId, input: { name: 'x', tier: 'DEV', resources: res(0.5) } })).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await t.as(viewer, INVITE, { org: org.id, input: { email: uniqueEmail('q-x'), roleKey: 'member' } })).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    // Invalid input over quota: BAD_USER_INPUT.
    const bad = await t.as(org.owner, CREATE_ENV, { ws: org.workspaceId, input: { name: 'x', tier: 'DEV', resources: res(0.01) } });
    expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'resources.cpu' });
    // A taken slug over quota: QUOTA_EXCEEDED, not CONFLICT.
    const taken = await t.as(org.owner, CREATE_WS, { org: org.id, input: { name: 'Default', slug: 'default' } });
    expect(quotaError(taken)).toMatchObject({ code: 'QUOTA_EXCEEDED', resource: 'WORKSPACES' });
    expect(quotaError(await createEnv(org, 'x'))).toEqual({ code: 'QUOTA_EXCEEDED', resource: 'ENVIRONMENTS', used: 0, limit: 0, scope: 'ORGANIZATION' });
  });
});

describe(`exact under concurrency ${RACE_NOTE}`, () => {
  it(`12 parallel environment creates with room for 3 succeed exactly 3 times, ${ROUNDS} rounds`, async () => {
    for (let round = 1; round <= ROUNDS; round += 1) {
      await setProLimits({ max_environments: 5 });
      const org = await newOrg(`q-race-env-${round}`);
      ok(await createEnv(org, 'pre-1'));
      ok(await createEnv(org, 'pre-2'));
      const results = await concurrently(12, (i) => createEnv(org, `race-${i}`));
      expect({ round, outcomes: outcomes(results) }).toEqual({ round, outcomes: { ok: 3, '200:QUOTA_EXCEEDED': 9 } });
      expect(await activeEnvironments(org)).toBe(5);
      // Exactly one event per crossing although the crossing creates ran concurrently (4 of 5, then 5 of 5).
      expect((await thresholdEvents(org)).map((e) => [e.metadata.level, e.metadata.used])).toEqual([['WARNING', 4], ['BLOCKED', 5]]);
    }
  });

  it(`20 parallel environment creates against a CPU total with room for 5 succeed exactly 5 times, ${ROUNDS} rounds`, async () => {
    for (let round = 1; round <= ROUNDS; round += 1) {
      await setProLimits({ total_cpu: 5 });
      const org = await newOrg(`q-race-cpu-${round}`);
      const results = await concurrently(20, (i) => createEnv(org, `cpu-${i}`, res(1)));
      expect({ round, outcomes: outcomes(results) }).toEqual({ round, outcomes: { ok: 5, '200:QUOTA_EXCEEDED': 15 } });
      expect((await quotaOf(org)).CPU).toMatchObject({ used: 5, level: 'BLOCKED' });
    }
  });

  it(`8 parallel invitations with 2 free seats succeed exactly 2 times, ${ROUNDS} rounds`, async () => {
    for (let round = 1; round <= ROUNDS; round += 1) {
      await setProLimits({ max_members: 3 });
      const org = await newOrg(`q-race-inv-${round}`);
      const results = await concurrently(8, (i) => t.as(org.owner, INVITE, { org: org.id, input: { email: uniqueEmail(`q-race-inv-${round}-${i}`), roleKey: 'member' } }));
      expect({ round, outcomes: outcomes(results) }).toEqual({ round, outcomes: { ok: 2, '200:QUOTA_EXCEEDED': 6 } });
      expect(await count(`SELECT count(*)::int AS n FROM invitations WHERE organization_id = $1 AND status = 'PENDING'`, [org.id])).toBe(2);
      expect((await quotaOf(org)).MEMBERS).toMatchObject({ used: 3, limit: 3, level: 'BLOCKED' });
    }
  });

  it(`parallel workspace creates and environment resizes keep their limits together, ${ROUNDS} rounds`, async () => {
    for (let round = 1; round <= ROUNDS; round += 1) {
      await setProLimits({ max_workspaces: 4, total_cpu: 3 });
      const org = await newOrg(`q-race-mixed-${round}`);
      const env = ok(await createEnv(org, 'grow', res(1))).createEnvironment.id as string;
      const results = await concurrently(20, (i) =>
        i % 2 === 0
          ? t.as(org.owner, CREATE_WS, { org: org.id, input: { name: `ws-${i}` } })
          : i % 4 === 1
            ? createEnv(org, `e-${i}`, res(1))
            : t.as(org.owner, UPDATE_ENV, { id: env, input: { resources: res(1 + (i % 7) / 10) } }),
      );
      expect(results.every((r) => !r.errors || r.errors[0]?.extensions?.code === 'QUOTA_EXCEEDED')).toBe(true);
      expect(await count(`SELECT count(*)::int AS n FROM workspaces WHERE organization_id = $1`, [org.id])).toBe(4);
      const cpu = await readAll<{ s: string }>(t.app, `SELECT coalesce(sum(cpu), 0) AS s FROM environments WHERE organization_id = $1 AND is_active`, [org.id]);
      expect(Number(cpu[0]!.s)).toBeLessThanOrEqual(3);
    }
  });
});

describe('QuotaChecker.exceeding (for changePlan: USAGE_EXCEEDS_PLAN)', () => {
  /** As billing's changePlan calls it: in a mutation of the organization (here a system context). */
  async function exceeding(org: Org, plan: PlanKey): Promise<string | null> {
    const ctx = RequestContext.forSystem({ config: t.app.config, db: t.app.db, envelope: t.app.envelope, logger: pino({ level: 'silent' }) }, org.id, 'test:exceeding');
    try {
      return await ctx.mutate(() => new QuotaChecker(ctx).exceeding(org.id, plan));
    } finally {
      await ctx.tx.finish();
    }
  }

  it('names the first resource whose current usage is over the target plan, or null when it fits', async () => {
    const org = await newOrg('q-exceeding');
    expect(await exceeding(org, PlanKey.FREE)).toBeNull();
    // A per-environment maximum of the target (FREE: 1 CPU per environment) counts too.
    const env = ok(await createEnv(org, 'a', res(1.5))).createEnvironment.id as string;
    expect(await exceeding(org, PlanKey.FREE)).toBe('CPU');
    expect(await exceeding(org, PlanKey.STARTER)).toBeNull();
    ok(await t.as(org.owner, UPDATE_ENV, { id: env, input: { resources: res(1, 2049) } }));
    expect(await exceeding(org, PlanKey.FREE)).toBe('RAM_MB');
    ok(await t.as(org.owner, UPDATE_ENV, { id: env, input: { resources: res(1, 2048) } }));
    expect(await exceeding(org, PlanKey.FREE)).toBeNull();
    // Counts come first: a second workspace is over FREE's one.
    ok(await t.as(org.owner, CREATE_WS, { org: org.id, input: { name: 'second' } }));
    expect(await exceeding(org, PlanKey.FREE)).toBe('WORKSPACES');
    // Pending invitations count as members: owner + 3 > FREE's 3.
    for (let i = 0; i < 3; i += 1) await invite(t, org.owner, org.id, uniqueEmail(`q-exc-${i}`));
    expect(await exceeding(org, PlanKey.FREE)).toBe('MEMBERS');
    expect(await exceeding(org, PlanKey.STARTER)).toBeNull();
    expect(await exceeding(org, PlanKey.ENTERPRISE)).toBeNull();
  });
});

describe('README', () => {
  it("the plans and limits table of 'Quotas' is the catalogue's data", async () => {
    const readme = fs.readFileSync(path.join(__dirname, '../../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Quotas'));
    const rows = section.split('\n').filter((line) => /^\| (monthly price|max|total|audit|api)/.test(line));
    const table = Object.fromEntries(rows.map((line) => {
      const cells = line.split('|').slice(1, -1).map((c) => c.trim());
      return [cells[0]!.split(' ')[0], cells.slice(1)];
    }));
    const plans = ok(await t.as(uniqueEmail('q-readme'), `{ plans { key monthlyPriceCents limits { maxMembers maxWorkspaces maxEnvironments maxApiKeys maxCpuPerEnvironment maxRamMbPerEnvironment maxDiskGbPerEnvironment totalCpu totalRamMb totalDiskGb auditRetentionDays apiRateLimitPerMinute } } }`)).plans as Array<{ key: string; monthlyPriceCents: number | null; limits: Record<string, number | null> }>;
    const cell = (value: number | null, unlimited: string) => (value === null ? unlimited : String(value));
    const expected: Record<string, string[]> = { monthly: plans.map((p) => cell(p.monthlyPriceCents, 'custom')) };
    for (const key of Object.keys(plans[0]!.limits)) expected[key] = plans.map((p) => cell(p.limits[key]!, '—'));
    expect(table).toEqual(expected);
    expect(plans.map((p) => p.key)).toEqual(['FREE', 'STARTER', 'PRO', 'BUSINESS', 'ENTERPRISE']);
  });
});
