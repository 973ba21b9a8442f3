import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { freshDatabaseUrl, usesRealPostgres } from '../../helpers/app';
import { buildService, post, type ServiceProcess, startService } from '../../helpers/service-process';

/**
 * SPEC §5 Audit: the export streams in constant memory. The built service runs in a child process
 * (so the measurement is of the server alone) on PostgreSQL; 200 000 events are seeded with
 * generate_series straight into its database; the test reads the export — pausing for a while
 * after the first chunk (without backpressure the server would keep reading the cursor and
 * buffer everything meanwhile), then at full speed — and samples the server's resident set size
 * (VmRSS of the child, /proc) all along. The body is over 100 MB; the server's memory must stay
 * within a few tens of MB of where it started.
 *
 * PostgreSQL only: the embedded database lives inside the service process, where nothing else
 * can seed it while the service runs.
 */
const onPostgres = usesRealPostgres() ? describe : describe.skip;

const EVENTS = 200_000;
/** The most the server's RSS may grow during the export (the body is ~130 MB; measured: ~20 MB). */
const GROWTH_BOUND_MB = 40;
const PAUSE_MS = 3000;
/** The child's old-space cap: well under the body's 130 MB. */
const HEAP_CAP_MB = 96;

let build: ReturnType<typeof buildService> | undefined;
let database: Awaited<ReturnType<typeof freshDatabaseUrl>> | undefined;
let service: ServiceProcess | undefined;
let dataDir: string | undefined;
/** The default organization, whose trail the first test seeds. */
let organizationId: string;

beforeAll(async () => {
  if (!usesRealPostgres()) return;
  build = buildService('audit-export');
  database = await freshDatabaseUrl();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenant-export-'));
  service = await startService(build.dir, {
    DATABASE_URL: database.url!,
    DATA_DIR: dataDir,
    SECRETS_MASTER_KEY: crypto.randomBytes(32).toString('base64'),
    LOG_LEVEL: 'warn',
    JOB_INTERVAL_SECONDS: '3600',
    // V8 collects lazily: with an unbounded heap, garbage of a fast export piles up to ~100 MB before
    // each full collection (a sawtooth that falls back every time). A heap capped well below the
    // body's size turns "constant memory" into a hard fact: an export held in memory would not fit.
    NODE_OPTIONS: `--max-old-space-size=${HEAP_CAP_MB}`,
  });
}, 180_000);

afterAll(async () => {
  await service?.stop(10_000);
  await database?.drop();
  build?.remove();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

/** The child's resident set size in MB, read from /proc (the server's own memory, not the test's). */
function rssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]);
  return kb / 1024;
}

onPostgres('exporting 200 000 events (a service process on PostgreSQL)', () => {
  it('streams them all, newest first, while the server process stays within a constant memory bound, also while the client pauses', async () => {
    const running = service!;
    const pid = running.child.pid!;
    const me = await post(running.url, running.adminToken, `{ organization(slug: "default") { id } }`);
    organizationId = me.body.data!.organization.id;

    const admin = new Client({ connectionString: database!.url });
    await admin.connect();
    try {
      await admin.query(
        `INSERT INTO audit_events (organization_id, occurred_at, action, actor_type, actor_id, actor_email, actor_name, workspace_id, resource_type,
           resource_id, resource_name, changes, metadata, ip_address, user_agent, request_id)
         SELECT $1, now() - interval '1 hour' - g * interval '1 second',
           (ARRAY['workspace.updated', 'member.role_changed', 'environment.created', 'feature.toggled', 'role.updated'])[1 + g % 5],
           'USER', md5(g::text)::uuid::text, 'user' || (g % 100) || '@example.com', 'User ' || (g % 100), NULL, 'workspace',
           md5((g % 1000)::text)::uuid::text, 'Resource number ' || g,
           jsonb_build_object('changedFields', jsonb_build_array('name'), 'oldValues', jsonb_build_object('name', 'old ' || g), 'newValues', jsonb_build_object('name', 'new ' || g)),
           jsonb_build_object('seq', g), '203.0.113.' || (g % 250), 'Mozilla/5.0 (X11; Linux x86_64) AuditExportTest/1.0', 'req-' || g
         FROM generate_series(1, ${EVENTS}) AS g`,
        [organizationId],
      );
      await admin.query(`ANALYZE audit_events`);
    } finally {
      await admin.end();
    }

    // Warm-up: the first export compiles the code paths and sizes the heap; the baseline is taken after it.
    const warm = await fetch(`${running.url}/organizations/${organizationId}/audit-events/export?actions=role.updated&since=${new Date(Date.now() - 3_700_000).toISOString()}`, {
      headers: { authorization: `Bearer ${running.adminToken}` },
    });
    expect(warm.status).toBe(200);
    await warm.text();
    const baseline = rssMb(pid);

    const samples: Array<{ at: number; mb: number; phase: string }> = [];
    let phase = 'start';
    const sampler = setInterval(() => samples.push({ at: Date.now(), mb: rssMb(pid), phase }), 20);
    let bytes = 0;
    let lines = 0;
    let firstLine = '';
    let pending = '';
    let lastLine = '';
    try {
      const res = await fetch(`${running.url}/organizations/${organizationId}/audit-events/export?format=ndjson`, {
        headers: { authorization: `Bearer ${running.adminToken}` },
      });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let paused = false;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        bytes += value.byteLength;
        const text = pending + decoder.decode(value, { stream: true });
        const parts = text.split('\n');
        pending = parts.pop()!;
        if (!firstLine && parts.length > 0) firstLine = parts[0]!;
        if (parts.length > 0) lastLine = parts[parts.length - 1]!;
        lines += parts.length;
        if (!paused && bytes > 1_000_000) {
          paused = true;
          phase = 'paused';
          await new Promise((r) => setTimeout(r, PAUSE_MS));
          phase = 'reading';
        }
      }
    } finally {
      clearInterval(sampler);
    }

    expect(pending).toBe('');
    // Every event of the organization: the seeded ones and the few the service wrote itself (the admin joining).
    expect(lines).toBeGreaterThanOrEqual(EVENTS);
    expect(lines).toBeLessThan(EVENTS + 10);
    expect(bytes).toBeGreaterThan(100 * 1024 * 1024);
    // Newest first: the oldest seeded event (g = 200 000) comes last.
    expect(JSON.parse(lastLine).metadata).toEqual({ seq: EVENTS });
    expect(Date.parse(JSON.parse(firstLine).occurredAt)).toBeGreaterThan(Date.parse(JSON.parse(lastLine).occurredAt));

    const peak = Math.max(...samples.map((s) => s.mb));
    const duringPause = samples.filter((s) => s.phase === 'paused').map((s) => s.mb);
    const summary = { baseline, peak, pauseMax: Math.max(...duringPause), samples: samples.length, bodyMb: bytes / 1024 / 1024 };
    // Printed for the README's numbers; the assertions below are the contract.
    console.log(`audit export memory: ${JSON.stringify(summary)}`);
    expect(samples.length).toBeGreaterThan(20);
    expect(duringPause.length).toBeGreaterThan(10);
    expect(peak - baseline).toBeLessThan(GROWTH_BOUND_MB);
    expect(Math.max(...duringPause) - baseline).toBeLessThan(GROWTH_BOUND_MB);
    // Flat: the last quarter of the read phase sits where the first quarter did (no growth with the amount sent).
    const reading = samples.filter((s) => s.phase === 'reading').map((s) => s.mb);
    const quarter = Math.floor(reading.length / 4);
    expect(Math.max(...reading.slice(-quarter)) - Math.max(...reading.slice(0, quarter))).toBeLessThan(15);
  }, 300_000);

  it('a client that goes away mid-export ends the transaction and frees the connection at once; the service keeps answering', async () => {
    const running = service!;
    const abort = new AbortController();
    const res = await fetch(`${running.url}/organizations/${organizationId}/audit-events/export?format=csv`, {
      headers: { authorization: `Bearer ${running.adminToken}` },
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let received = 0;
    while (received < 500_000) received += (await reader.read()).value!.byteLength;
    abort.abort();
    const admin = new Client({ connectionString: database!.url });
    await admin.connect();
    try {
      // The export's session held a transaction with an open cursor; once the client is gone it must not linger.
      const lingering = async () =>
        (await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tenant-service' AND state LIKE 'idle in transaction%'`)).rows[0].n as number;
      const deadline = Date.now() + 5000;
      while ((await lingering()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await lingering()).toBe(0);
    } finally {
      await admin.end();
    }
    const after = await post(running.url, running.adminToken, `{ organization(slug: "default") { id } }`);
    expect(after.body.data!.organization.id).toBe(organizationId);
  }, 60_000);
});
