import pino from 'pino';
import type { Client } from 'pg';
import { MAILER_ROLE } from '../../../src/database/roles';
import { createScheduler } from '../../../src/jobs/jobs';
import type { Scheduler } from '../../../src/jobs/scheduler';
import { ok, startTestApp, type TestApp, usesRealPostgres } from '../../helpers/app';
import { readAll, sideConnection, withAllRows } from '../../helpers/db';
import { publish, SET_DEFAULT, SET_DIGEST, team, type Team } from './notification-helpers';

/**
 * The daily digest (a JobKind of the one scheduler, due when a UTC day is over, compared with the
 * database's now(); the tests move the items' day into the past as an operator would see it) and
 * the email outbox contract a mailer follows (FOR UPDATE SKIP LOCKED claiming, sent_at/attempts).
 */

let app: TestApp;
let scheduler: Scheduler;
let t: Team;
const TYPE = 'report.ready';
beforeAll(async () => {
  app = await startTestApp();
  scheduler = createScheduler({ config: app.config, db: app.db, envelope: app.envelope, logger: pino({ level: 'silent' }) });
  t = await team(app, 'digest');
  ok(await app.gql(SET_DEFAULT, { org: t.org.id, type: TYPE, channel: 'EMAIL' }, { as: t.owner }));
});
afterAll(async () => {
  await scheduler?.stop();
  await app?.close();
});

const outbox = (type: string) =>
  readAll<{ recipient_email: string; user_id: string | null; payload: any; dedupe_key: string | null; sent_at: Date | null; attempts: number }>(
    app,
    `SELECT recipient_email, user_id, payload, dedupe_key, sent_at, attempts FROM email_outbox WHERE organization_id = $1 AND type = $2 ORDER BY recipient_email`,
    [t.org.id, type],
  );
/** Moves the pending digest items of the organization `days` days into the past. */
const age = (days: number, where = 'true') =>
  withAllRows(app, (r) => r.query(`UPDATE notification_digest_items SET day = day - $2::int, created_at = created_at - make_interval(days => $2::int) WHERE organization_id = $1 AND digested_at IS NULL AND ${where}`, [t.org.id, days]));

describe('the daily digest', () => {
  it('collects a day of EMAIL notifications into one outbox row per recipient, built by the job once the day is over; a rerun builds nothing more', async () => {
    expect(scheduler.registered).toContain('notification_digest');
    for (const as of [t.member, t.viewer]) expect(ok(await app.gql(SET_DIGEST, { org: t.org.id, on: true }, { as })).setNotificationDigest.emailDigest).toBe(true);
    for (let i = 0; i < 3; i++) expect(await publish(app, t.org.id, { type: TYPE, title: `Report ${i}`, body: `body ${i}`, audience: 'ALL_MEMBERS' })).toBe(4);
    // Without the digest: one email per notification; with it: nothing yet.
    expect((await outbox(TYPE)).map((r) => r.recipient_email).sort()).toEqual([t.admin, t.admin, t.admin, t.owner, t.owner, t.owner].sort());
    expect(await outbox('notification.digest')).toEqual([]);
    expect((await scheduler.runOnce()).notification_digest).toBe(0);

    await age(1);
    expect((await scheduler.runOnce()).notification_digest).toBe(2);
    const digests = await outbox('notification.digest');
    expect(digests.map((d) => d.recipient_email)).toEqual([t.member, t.viewer].sort());
    for (const d of digests) {
      expect(d.sent_at).toBeNull();
      expect(d.attempts).toBe(0);
      expect(d.dedupe_key).toBe(`digest:${d.user_id}:${d.payload.day}`);
      expect(d.payload.items.map((i: { title: string }) => i.title)).toEqual(['Report 0', 'Report 1', 'Report 2']);
      expect(d.payload.items[0]).toMatchObject({ type: TYPE, body: 'body 0' });
    }
    expect((await scheduler.runOnce()).notification_digest).toBe(0);
    expect(await outbox('notification.digest')).toHaveLength(2);
  });

  it('builds one row per recipient per day, each digest exactly once with two instances running at once', async () => {
    await publish(app, t.org.id, { type: TYPE, title: 'Older', audience: 'USER', userId: t.ids.member });
    await age(3);
    await publish(app, t.org.id, { type: TYPE, title: 'Newer', audience: 'USER', userId: t.ids.member });
    await age(2, `title = 'Newer'`);
    const other = createScheduler({ config: app.config, db: app.db, envelope: app.envelope, logger: pino({ level: 'silent' }) });
    const [a, b] = await Promise.all([scheduler.runOnce(), other.runOnce()]);
    expect(a.notification_digest! + b.notification_digest!).toBe(2);
    const mine = (await outbox('notification.digest')).filter((d) => d.recipient_email === t.member);
    expect(mine.map((d) => d.payload.items.map((i: { title: string }) => i.title)).sort()).toEqual([['Newer'], ['Older'], ['Report 0', 'Report 1', 'Report 2']]);
    expect(await readAll(app, `SELECT 1 FROM notification_digest_items WHERE organization_id = $1 AND digested_at IS NULL`, [t.org.id])).toEqual([]);
  });

  it('turning the digest off sends each email again', async () => {
    ok(await app.gql(SET_DIGEST, { org: t.org.id, on: false }, { as: t.viewer }));
    await publish(app, t.org.id, { type: TYPE, title: 'Direct', audience: 'USER', userId: t.ids.viewer });
    expect((await outbox(TYPE)).filter((r) => r.recipient_email === t.viewer)).toHaveLength(1);
  });
});

describe('the outbox contract for a mailer', () => {
  const CLAIM = `SELECT organization_id, id, recipient_email FROM email_outbox
                 WHERE sent_at IS NULL AND attempts < 5 AND next_attempt_at <= now()
                 ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED`;
  const asMailer = async (client: Client) => {
    await client.query('BEGIN');
    await client.query(`SET LOCAL ROLE ${MAILER_ROLE}`);
  };

  it('claims disjoint batches with FOR UPDATE SKIP LOCKED, marks sent or failed, and never hands a sent row out again (mailer role: read and mark only)', async () => {
    if (!usesRealPostgres()) {
      // Two concurrent claims need two connections (PostgreSQL); the embedded database has one.
      expect(await readAll(app, `SELECT has_table_privilege('${MAILER_ROLE}', 'email_outbox', 'INSERT') AS i`)).toEqual([{ i: false }]);
      return;
    }
    const unsent = (await readAll<{ n: number }>(app, `SELECT count(*)::int AS n FROM email_outbox WHERE sent_at IS NULL`))[0]!.n;
    expect(unsent).toBeGreaterThan(6);
    const one = await sideConnection(app, 'mailer-1');
    const two = await sideConnection(app, 'mailer-2');
    try {
      await asMailer(one);
      await asMailer(two);
      const first = (await one.query(CLAIM, [3])).rows;
      const second = (await two.query(CLAIM, [3])).rows;
      expect(first).toHaveLength(3);
      expect(second).toHaveLength(3);
      expect(first.map((r) => r.id).filter((id) => second.some((s) => s.id === id))).toEqual([]);
      // Sent by the first mailer; the second one's delivery failed: it is retried later.
      await one.query(`UPDATE email_outbox SET sent_at = now(), attempts = attempts + 1 WHERE (organization_id, id) IN (SELECT unnest($1::uuid[]), unnest($2::uuid[]))`, [
        first.map((r) => r.organization_id),
        first.map((r) => r.id),
      ]);
      await two.query(
        `UPDATE email_outbox SET attempts = attempts + 1, last_error = 'smtp 451', next_attempt_at = now() + interval '5 minutes' WHERE (organization_id, id) IN (SELECT unnest($1::uuid[]), unnest($2::uuid[]))`,
        [second.map((r) => r.organization_id), second.map((r) => r.id)],
      );
      await one.query('COMMIT');
      await two.query('COMMIT');
      await asMailer(one);
      const next = (await one.query(CLAIM, [1000])).rows.map((r) => r.id);
      expect(next).toHaveLength(unsent - 6);
      expect(next.filter((id) => [...first, ...second].some((r) => r.id === id))).toEqual([]);
      // The mailer may read and mark, nothing else.
      await expect(one.query(`DELETE FROM email_outbox`)).rejects.toThrow(/permission denied/);
      await one.query('ROLLBACK');
      await asMailer(one);
      await expect(one.query(`UPDATE email_outbox SET payload = '{}'`)).rejects.toThrow(/permission denied/);
      await one.query('ROLLBACK');
    } finally {
      await one.end();
      await two.end();
    }
    const marked = await readAll<{ sent: number; failed: number }>(
      app,
      `SELECT count(*) FILTER (WHERE sent_at IS NOT NULL)::int AS sent, count(*) FILTER (WHERE last_error = 'smtp 451' AND attempts = 1 AND sent_at IS NULL)::int AS failed FROM email_outbox`,
    );
    expect(marked).toEqual([{ sent: 3, failed: 3 }]);
  });
});
