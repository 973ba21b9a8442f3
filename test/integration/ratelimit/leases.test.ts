import { ok, startTestApp, type TestApp } from '../../helpers/app';
import { uniqueEmail } from '../../helpers/factories';
import { MAX_LEASE } from '../../../src/ratelimit/rate-limiter';
import { awayFromMinuteEnd, currentCounters, resetCounters } from './rate-limit-helpers';

/**
 * Far from its limit a principal's requests are counted in leases (README "Rate limits"): the
 * instance reserves up to MAX_LEASE requests in the database in one call and serves them without a
 * statement each; X-RateLimit-Remaining stays exact, and the database holds what was reserved.
 */
const LIMIT = 1000;
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ env: { RATE_LIMIT_USER_PER_MINUTE: String(LIMIT) } });
});
afterAll(async () => {
  await app?.close();
});

it('60 requests of one user: exact remaining on each, counted in the database as 1 + 2 leases', async () => {
  await awayFromMinuteEnd(app, 20);
  await resetCounters(app);
  const ada = uniqueEmail('leases');
  const remaining: Array<string | null> = [];
  for (let i = 0; i < 60; i++) {
    const r = await app.gql(`{ me { user { email } } }`, {}, { as: ada });
    expect(ok(r).me.user.email).toBe(ada);
    remaining.push(r.headers.get('x-ratelimit-remaining'));
  }
  expect(remaining).toEqual(Array.from({ length: 60 }, (_, i) => String(LIMIT - 1 - i)));
  // The first request alone (nothing known of it yet), then two leases: 1 + 50 + 50 reserved.
  expect(Object.values(await currentCounters(app))).toEqual([1 + 2 * MAX_LEASE]);
});
