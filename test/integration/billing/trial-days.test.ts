import { ok, startTestApp, type TestApp } from '../../helpers/app';
import { createOrganization, uniqueEmail } from '../../helpers/factories';
import { ORG_BILLING } from './billing-helpers';

/** TRIAL_DAYS=0 (SPEC §1): no trial. An app of its own (PGlite runs one embedded database per file well). */

const DAY = 24 * 3600 * 1000;
let noTrial: TestApp;
beforeAll(async () => {
  noTrial = await startTestApp({ env: { TRIAL_DAYS: '0' } });
});
afterAll(async () => {
  await noTrial?.close();
});

describe('TRIAL_DAYS=0', () => {
  it('starts new organizations on FREE/ACTIVE at once, without a trial', async () => {
    const owner = uniqueEmail('free');
    const org = await createOrganization(noTrial, owner);
    const s = ok(await noTrial.gql(ORG_BILLING, { id: org.id }, { as: owner })).organization.subscription;
    expect(s).toMatchObject({ status: 'ACTIVE', plan: { key: 'FREE' }, trialEndsAt: null, effectiveLimits: { maxMembers: 3, maxWorkspaces: 1 } });
    expect(Date.parse(s.currentPeriodEnd) - Date.parse(s.currentPeriodStart)).toBeGreaterThanOrEqual(28 * DAY);
  });
});
