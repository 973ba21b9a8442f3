import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { postgresBinaries, type PrivatePostgres, startPrivatePostgres } from '../../helpers/private-postgres';
import { buildService, post, type ServiceProcess, startService, until } from '../../helpers/service-process';

/**
 * SPEC §8: the process survives a database restart. The built service runs against a private
 * PostgreSQL server (the machine's shared one is never stopped) under a steady write load; the
 * server is killed (`pg_ctl stop -m immediate`: a crash, recovered from WAL) and started again
 * a few seconds later.
 *
 * Needs the PostgreSQL server binaries (initdb, pg_ctl), which CI has; on a machine with Node
 * alone there is no server to restart.
 */
const withServerBinaries = postgresBinaries() ? describe : describe.skip;

const WRITERS = 4;
const OUTAGE_MS = 4000;
/** No request may take longer than this, outage or not (the pool gives up after DB_CONNECTION_TIMEOUT_MS = 2 s). */
const ANSWER_BOUND_MS = 10_000;
/** After the server is back, a write must succeed within this. */
const RECOVERY_BOUND_MS = 10_000;

interface Outcome {
  name: string;
  startedAt: number;
  endedAt: number;
  status?: number;
  id?: string;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
  /** No answer: the request hung past ANSWER_BOUND_MS or the connection failed. */
  failure?: string;
}

let build: ReturnType<typeof buildService>;
let pg: PrivatePostgres;
let service: ServiceProcess | undefined;
let dataDir: string;

beforeAll(async () => {
  if (!postgresBinaries()) return;
  build = buildService('restart');
  pg = await startPrivatePostgres();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenant-restart-'));
}, 180_000);

afterAll(async () => {
  await service?.stop(5000);
  await pg?.destroy();
  build?.remove();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

withServerBinaries('a PostgreSQL restart under a write load (private server)', () => {
  it('keeps the process up, answers 503 meanwhile without hanging, writes again within seconds without a restart, and loses no acknowledged write', async () => {
    service = await startService(build.dir, {
      DATABASE_URL: pg.url,
      DATA_DIR: dataDir,
      SECRETS_MASTER_KEY: crypto.randomBytes(32).toString('base64'),
      DB_CONNECTION_TIMEOUT_MS: '2000',
      LOG_LEVEL: 'warn',
    });
    const running = service;
    const outcomes: Outcome[] = [];
    let load = true;
    let counter = 0;
    const writer = async () => {
      while (load) {
        const name = `Load ${++counter}`;
        const outcome: Outcome = { name, startedAt: Date.now(), endedAt: 0 };
        try {
          const res = await post(running.url, running.adminToken, `mutation($n: String!) { createOrganization(input: { name: $n }) { id name } }`, { n: name }, ANSWER_BOUND_MS);
          outcome.status = res.status;
          outcome.errors = res.body.errors;
          if (!res.body.errors && res.body.data?.createOrganization?.name === name) outcome.id = res.body.data.createOrganization.id;
        } catch (error) {
          outcome.failure = String((error as Error).cause ?? error);
        }
        outcome.endedAt = Date.now();
        outcomes.push(outcome);
        // A failed request answers at once during the outage: do not spin.
        if (!outcome.id) await new Promise((r) => setTimeout(r, 100));
      }
    };
    const writers = Array.from({ length: WRITERS }, () => writer());
    const readyz = async () => (await fetch(`${running.url}/readyz`, { signal: AbortSignal.timeout(ANSWER_BOUND_MS) })).status;

    try {
      await until('writes before the outage', async () => outcomes.filter((o) => o.id).length >= 5, 30_000);

      await pg.stop('immediate');
      const down = Date.now();
      const duringOutage = { readyz: [] as number[], healthz: [] as number[] };
      while (Date.now() - down < OUTAGE_MS) {
        duringOutage.readyz.push(await readyz());
        duringOutage.healthz.push((await fetch(`${running.url}/healthz`)).status);
        await new Promise((r) => setTimeout(r, 250));
      }
      const restarting = Date.now();
      await pg.start();
      const up = Date.now();

      await until('a write after the restart', async () => outcomes.some((o) => o.id && o.startedAt >= up), RECOVERY_BOUND_MS);
      await until('/readyz after the restart', async () => (await readyz()) === 200, RECOVERY_BOUND_MS);
      load = false;
      await Promise.all(writers);

      // The process stayed up the whole time, and says so.
      expect(running.child.exitCode).toBeNull();
      expect(new Set(duringOutage.healthz)).toEqual(new Set([200]));
      expect(new Set(duringOutage.readyz)).toEqual(new Set([503]));

      // Every request got an answer within the bound: none hung, no connection was dropped.
      expect(outcomes.filter((o) => o.failure || o.endedAt - o.startedAt > ANSWER_BOUND_MS)).toEqual([]);

      // The outage was felt: requests sent while the server was down all failed, cleanly.
      const sentWhileDown = outcomes.filter((o) => o.startedAt > down && o.endedAt < restarting);
      expect(sentWhileDown.length).toBeGreaterThan(0);
      expect(sentWhileDown.filter((o) => o.id)).toEqual([]);
      // Every failure, whenever it happened: HTTP 503 and a masked INTERNAL_SERVER_ERROR naming the
      // database and the request id — no SQL, no stack, no hang.
      const failed = outcomes.filter((o) => !o.id);
      const shapes = new Set(failed.map((o) => JSON.stringify([o.status, o.errors?.map((e) => [e.extensions?.code, e.extensions?.reason, typeof e.extensions?.requestId, e.message])])));
      expect([...shapes]).toEqual([JSON.stringify([503, [['INTERNAL_SERVER_ERROR', 'DATABASE_UNAVAILABLE', 'string', 'The database is unavailable; try again shortly']]])]);

      // Writes succeed again within seconds, without restarting the service.
      const firstAfter = outcomes.filter((o) => o.id && o.startedAt >= up).sort((a, b) => a.endedAt - b.endedAt)[0]!;
      expect(firstAfter.endedAt - up).toBeLessThan(RECOVERY_BOUND_MS);

      // No acknowledged write is lost: every organization the service said it created is there.
      const acknowledged = outcomes.filter((o) => o.id);
      const client = new Client({ connectionString: pg.url });
      await client.connect();
      try {
        const { rows } = await client.query(`SELECT id::text, name FROM organizations WHERE id = ANY($1::uuid[])`, [acknowledged.map((o) => o.id)]);
        const stored = new Map(rows.map((r: { id: string; name: string }) => [r.id, r.name]));
        expect(acknowledged.filter((o) => stored.get(o.id!) !== o.name)).toEqual([]);
      } finally {
        await client.end();
      }
    } catch (error) {
      throw new Error(`${String(error)}\n--- service output ---\n${running.output()}`, { cause: error });
    } finally {
      load = false;
      await Promise.all(writers);
    }
  }, 120_000);
});
