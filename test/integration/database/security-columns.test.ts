import { SecurityColumns1766300000000 } from '../../../src/database/migrations/1766300000000-security-columns';
import { startTestApp, type TestApp } from '../../helpers/app';
import { inRollback, readAll, withAllRows } from '../../helpers/db';
import { createOrganization, uniqueEmail } from '../../helpers/factories';

/**
 * The columns generated from `security` (migration 1766300000000), which the security check of
 * lists reads: they follow every write, flag at least what the settings could refuse, and never
 * fail on what older versions or hand-written rows left in `security` — neither a write nor the
 * migration itself. The migration goes down and up again over such rows.
 */
let app: TestApp;
const ids: string[] = [];

const CASES: Array<[Record<string, unknown>, { require_mfa: boolean; session_timeout_minutes: number | null; ip_allowlisted: boolean }]> = [
  [{ requireMfa: true, sessionTimeoutMinutes: 30, ipAllowlist: ['10.0.0.0/8'] }, { require_mfa: true, session_timeout_minutes: 30, ip_allowlisted: true }],
  [{ requireMfa: false, sessionTimeoutMinutes: 480, ipAllowlist: [] }, { require_mfa: false, session_timeout_minutes: 480, ip_allowlisted: false }],
  [{}, { require_mfa: false, session_timeout_minutes: null, ip_allowlisted: false }],
  [{ requireMfa: null, sessionTimeoutMinutes: null, ipAllowlist: null }, { require_mfa: false, session_timeout_minutes: null, ip_allowlisted: false }],
  // What the API never stores, flagged rather than failing: checked exactly by Access.inside.
  [{ requireMfa: 'yes', sessionTimeoutMinutes: 7.5, ipAllowlist: 'everyone' }, { require_mfa: true, session_timeout_minutes: 7, ip_allowlisted: true }],
  [{ requireMfa: 1, sessionTimeoutMinutes: 'soon' }, { require_mfa: true, session_timeout_minutes: null, ip_allowlisted: false }],
  [{ sessionTimeoutMinutes: 1e12 }, { require_mfa: false, session_timeout_minutes: 2147483646, ip_allowlisted: false }],
  [{ sessionTimeoutMinutes: -1e12 }, { require_mfa: false, session_timeout_minutes: -2147483648, ip_allowlisted: false }],
];

const columns = () =>
  readAll<{ id: string; require_mfa: boolean; session_timeout_minutes: number | null; ip_allowlisted: boolean }>(
    app,
    `SELECT id, require_mfa, session_timeout_minutes, ip_allowlisted FROM organizations WHERE id = ANY($1::uuid[])`,
    [ids],
  ).then((rows) => ids.map((id) => rows.find((r) => r.id === id)));

beforeAll(async () => {
  app = await startTestApp();
  const owner = uniqueEmail('security-columns');
  for (const [security] of CASES) {
    const org = await createOrganization(app, owner);
    ids.push(org.id);
    await withAllRows(app, (runner) => runner.query(`UPDATE organizations SET security = $2::jsonb WHERE id = $1`, [org.id, JSON.stringify(security)]));
  }
});
afterAll(async () => {
  await app?.close();
});

const expected = () => CASES.map(([, want], i) => ({ id: ids[i], ...want }));

it('follow every write of security, and never fail on what it holds', async () => {
  expect(await columns()).toEqual(expected());
});

it('the migration goes down (the columns and their indexes gone) and up again over such rows', async () => {
  const columnNames = `SELECT column_name FROM information_schema.columns WHERE table_name = 'organizations'
    AND column_name IN ('require_mfa', 'session_timeout_minutes', 'ip_allowlisted') ORDER BY 1`;
  const indexNames = `SELECT indexname FROM pg_indexes WHERE tablename = 'organizations' AND indexname IN
    ('organizations_require_mfa_idx', 'organizations_session_timeout_idx', 'organizations_ip_allowlisted_idx') ORDER BY 1`;
  await inRollback(app, async (runner) => {
    await new SecurityColumns1766300000000().down(runner);
    expect(await runner.query(columnNames)).toEqual([]);
    expect(await runner.query(indexNames)).toEqual([]);
    await new SecurityColumns1766300000000().up(runner);
    expect((await runner.query(columnNames)).map((r: { column_name: string }) => r.column_name)).toEqual(['ip_allowlisted', 'require_mfa', 'session_timeout_minutes']);
    expect((await runner.query(indexNames)).length).toBe(3);
    const rows = await runner.query(`SELECT id, require_mfa, session_timeout_minutes, ip_allowlisted FROM organizations WHERE id = ANY($1::uuid[])`, [ids]);
    expect(ids.map((id) => rows.find((r: { id: string }) => r.id === id))).toEqual(expected());
  });
  expect(await columns()).toEqual(expected());
});
