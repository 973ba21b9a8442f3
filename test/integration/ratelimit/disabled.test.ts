import { ok, startTestApp, type TestApp } from '../../helpers/app';
import { uniqueEmail } from '../../helpers/factories';
import { currentCounters, resetCounters } from './rate-limit-helpers';

/** RATE_LIMITS=false (README "Configuration"): nothing is counted, nothing is refused. */
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ env: { RATE_LIMITS: 'false', RATE_LIMIT_USER_PER_MINUTE: '2' } });
});
afterAll(async () => {
  await app?.close();
});

it('serves every request beyond the limit, counts none and sends no rate-limit headers', async () => {
  await resetCounters(app);
  const ada = uniqueEmail('ada');
  for (let i = 0; i < 5; i++) {
    const r = await app.gql(`{ me { user { email } } }`, {}, { as: ada });
    expect(r.status).toBe(200);
    expect(ok(r).me.user.email).toBe(ada);
    expect(r.headers.get('x-ratelimit-limit')).toBeNull();
  }
  expect(await currentCounters(app)).toEqual({});
});
