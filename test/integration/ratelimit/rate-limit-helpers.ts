import type { Database } from '../../../src/database/database';
import { readAll } from '../../helpers/db';

type Target = Database | { db: Database };

/** Forgets every counter (each test starts from zero, whatever its set-up requests counted). */
export const resetCounters = (app: Target): Promise<unknown> => readAll(app, `DELETE FROM rate_limit_counters`);

/** The counters of the current minute: bucket key → hits. */
export async function currentCounters(app: Target): Promise<Record<string, number>> {
  const rows = await readAll<{ key: string; hits: number }>(app, `SELECT key, hits FROM rate_limit_counters WHERE window_start = date_trunc('minute', now())`);
  return Object.fromEntries(rows.map((r) => [r.key, Number(r.hits)]));
}

/** Moves every stored minute one minute into the past: what waiting for the next minute would do, without waiting. */
export const moveWindowsBack = (app: Target): Promise<unknown> => readAll(app, `UPDATE rate_limit_counters SET window_start = window_start - interval '1 minute'`);

/**
 * Waits, when the database's current minute ends within `margin` seconds, until the next one has
 * begun: a burst of requests that straddled two minutes would be counted in two windows.
 */
export async function awayFromMinuteEnd(app: Target, margin = 10): Promise<void> {
  const [row] = await readAll<{ left: number }>(app, `SELECT extract(epoch FROM date_trunc('minute', now()) + interval '1 minute' - now())::float8 AS left`);
  const left = Number(row!.left);
  if (left < margin) await new Promise((r) => setTimeout(r, Math.ceil((left + 0.5) * 1000)));
}

/** Sets a plan's requests per minute (null: unlimited). */
export const setPlanRate = (app: Target, plan: string, perMinute: number | null): Promise<unknown> =>
  readAll(app, `UPDATE plans SET api_rate_limit_per_minute = $2 WHERE key = $1`, [plan, perMinute]);
