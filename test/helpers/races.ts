import type { GqlResult, TestApp } from './app';
import { readAll } from './db';

/**
 * Helpers for race tests. PGlite runs one transaction at a time, so races only interleave on
 * PostgreSQL; tests that can only fail there say so with RACE_NOTE in their name.
 */
export const RACE_NOTE = '(bites only on PostgreSQL: PGlite serialises transactions)';

/** At least this many requests start at once in every race, over this many rounds. */
export const PARALLEL = 20;
export const ROUNDS = 3;

/** Starts n requests at once and waits for all of them. */
export const concurrently = <T>(n: number, fn: (i: number) => Promise<T>): Promise<T[]> => Promise.all(Array.from({ length: n }, (_, i) => fn(i)));

/** Tallies each outcome: 'ok' for a clean 200, otherwise `<status>:<codes>` (an INTERNAL_SERVER_ERROR shows up here). */
export function outcomes(results: GqlResult[]): Record<string, number> {
  const tally: Record<string, number> = {};
  for (const r of results) {
    const key = r.status === 200 && !r.errors?.length ? 'ok' : `${r.status}:${(r.errors ?? []).map((e) => e.extensions?.code).join(',')}`;
    tally[key] = (tally[key] ?? 0) + 1;
  }
  return tally;
}

export interface AuditRow {
  resource_id: string | null;
  resource_name: string | null;
  changes: { changedFields: string[]; oldValues: Record<string, unknown>; newValues: Record<string, unknown> } | null;
  metadata: Record<string, any> | null;
}

/** Every audit event of one action on one resource, read on a connection that sees every row. */
export const auditRows = (app: TestApp, action: string, resourceId: string): Promise<AuditRow[]> =>
  readAll<AuditRow>(app, `SELECT resource_id, resource_name, changes, metadata FROM audit_events WHERE action = $1 AND resource_id = $2`, [action, resourceId]);

/**
 * The updates of one field must form one serial chain starting at `initial`: each event's old
 * value is the previous event's new value. Two updates that read the same row version (a lost
 * update) show up as two events with the same old value. Returns the value at the chain's end.
 * New values must be distinct for the chain to be unambiguous.
 */
export function serialChainEnd(events: AuditRow[], field: string, initial: unknown): unknown {
  const changes = events.map((e) => e.changes!).filter((c) => c.changedFields.includes(field));
  expect(changes.every((c) => c.changedFields.length === 1)).toBe(true);
  const next = new Map<unknown, unknown>();
  for (const c of changes) {
    const from = c.oldValues[field];
    if (next.has(from)) throw new Error(`lost update on ${field}: two events changed it from ${JSON.stringify(from)}`);
    next.set(from, c.newValues[field]);
  }
  let value = initial;
  for (let step = 0; step < changes.length; step += 1) {
    if (!next.has(value)) throw new Error(`broken audit chain on ${field}: no event changed it from ${JSON.stringify(value)} (step ${step + 1} of ${changes.length})`);
    value = next.get(value);
  }
  return value;
}
