import { APP_ROLE } from '../../../src/database/roles';
import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { uniqueEmail } from '../../helpers/factories';

/** The plans catalogue, exactly SPEC §5's table (Billing): prices, limits, features. */

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

const PLANS = `{ plans { key name monthlyPriceCents annualPriceCents features limits {
  maxMembers maxWorkspaces maxEnvironments maxApiKeys maxCpuPerEnvironment maxRamMbPerEnvironment maxDiskGbPerEnvironment
  totalCpu totalRamMb totalDiskGb auditRetentionDays apiRateLimitPerMinute } } }`;

/** SPEC §5, column by column. */
const SPEC_TABLE = {
  monthlyPriceCents: [0, 2900, 7900, 19900, null],
  maxMembers: [3, 10, 50, 200, null],
  maxWorkspaces: [1, 3, 10, 25, null],
  maxEnvironments: [3, 10, 30, 100, null],
  maxApiKeys: [2, 10, 50, 200, null],
  maxCpuPerEnvironment: [1, 2, 4, 8, null],
  maxRamMbPerEnvironment: [2048, 4096, 8192, 16384, null],
  maxDiskGbPerEnvironment: [10, 20, 50, 100, null],
  totalCpu: [2, 8, 20, 64, null],
  totalRamMb: [4096, 16384, 40960, 131072, null],
  totalDiskGb: [20, 100, 200, 1000, null],
  auditRetentionDays: [7, 30, 90, 365, null],
  apiRateLimitPerMinute: [60, 300, 1000, 3000, null],
};
const KEYS = ['FREE', 'STARTER', 'PRO', 'BUSINESS', 'ENTERPRISE'];

describe('Query.plans', () => {
  it('lists the five plans in order with exactly the limits of the SPEC table (null = unlimited)', async () => {
    const { plans } = ok(await app.gql(PLANS, {}, { as: uniqueEmail('plans') }));
    expect(plans.map((p: { key: string }) => p.key)).toEqual(KEYS);
    expect(plans.map((p: { name: string }) => p.name)).toEqual(['Free', 'Starter', 'Pro', 'Business', 'Enterprise']);
    expect(plans.map((p: { monthlyPriceCents: number | null }) => p.monthlyPriceCents)).toEqual(SPEC_TABLE.monthlyPriceCents);
    for (const [limit, values] of Object.entries(SPEC_TABLE).filter(([k]) => k !== 'monthlyPriceCents')) {
      expect([limit, plans.map((p: { limits: Record<string, unknown> }) => p.limits[limit])]).toEqual([limit, values]);
    }
    expect(Object.keys(plans[0].limits).sort()).toEqual(Object.keys(SPEC_TABLE).filter((k) => k !== 'monthlyPriceCents').sort());
  });

  it('prices a year at 12 × monthly × 0.8 (ENTERPRISE: custom, null)', async () => {
    const { plans } = ok(await app.gql(PLANS, {}, { as: uniqueEmail('plans-annual') }));
    expect(plans.map((p: { annualPriceCents: number | null }) => p.annualPriceCents)).toEqual([0, 27840, 75840, 191040, null]);
    for (const p of plans.slice(0, 4)) expect(p.annualPriceCents).toBe(Math.round(12 * p.monthlyPriceCents * 0.8));
  });

  it('gives the features cumulatively, as the table\'s "+" says; ENTERPRISE has all', async () => {
    const { plans } = ok(await app.gql(PLANS, {}, { as: uniqueEmail('plans-features') }));
    const byKey = Object.fromEntries(plans.map((p: { key: string; features: string[] }) => [p.key, [...p.features].sort()]));
    expect(byKey).toEqual({
      FREE: [],
      STARTER: ['audit_log_export'],
      PRO: ['audit_log_export', 'custom_roles'],
      BUSINESS: ['audit_log_export', 'custom_roles', 'ip_allowlist', 'restricted_workspaces'],
      ENTERPRISE: ['audit_log_export', 'custom_roles', 'ip_allowlist', 'restricted_workspaces'],
    });
  });

  it('needs a signed-in user (any: the catalogue is the same for every organization)', async () => {
    const result = await app.gql(`{ plans { key } }`);
    expect(codes(result)).toEqual(['UNAUTHENTICATED']);
    expect(result.data).toBeNull();
  });

  it('is read-only to the service: the catalogue cannot be changed through its database role', async () => {
    const rights = await app.db.withConnection((r) =>
      r.query(`SELECT privilege_type FROM information_schema.role_table_grants WHERE table_name = 'plans' AND grantee = $1 ORDER BY 1`, [APP_ROLE]),
    );
    expect(rights).toEqual([{ privilege_type: 'SELECT' }]);
  });
});
