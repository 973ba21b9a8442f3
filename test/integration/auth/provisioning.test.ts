import { ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll } from '../../helpers/db';
import { uniqueEmail } from '../../helpers/factories';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

describe('just-in-time provisioning through the one-round-trip bootstrap', () => {
  it('keeps any name exactly: quotes, backslashes, dollar signs and non-ASCII travel as data, never as SQL', async () => {
    const email = uniqueEmail('quotes');
    const name = `O'Brien \\' $1 "x" \\\\ '); DROP TABLE users; -- 😀 Ünïcødé`;
    const token = await app.issuer.sign({ email, name });
    const me = ok(await app.gql<{ me: { user: { email: string; name: string } } }>(`{ me { user { email name } } }`, {}, { token }));
    expect(me.me.user).toEqual({ email, name });
    const [row] = await readAll<{ n: number }>(app, `SELECT count(*)::int AS n FROM users WHERE email = $1 AND name = $2`, [email, name]);
    expect(row).toEqual({ n: 1 });
    // A second request finds the same user (no duplicate, no refresh needed).
    expect(ok(await app.gql(`{ me { user { name } } }`, {}, { token })).me.user.name).toBe(name);
    expect(await readAll(app, `SELECT count(*)::int AS n FROM users WHERE email = $1`, [email])).toEqual([{ n: 1 }]);
  });
});
