import type { MigrationInterface, QueryRunner } from 'typeorm';
import { APP_ROLE } from '../roles';
import { OPEN_SESSION } from './1766100000000-open-session';

/**
 * `app_set_scope(request, user, organizations)` written out as the set_config calls of its body
 * (migration 1764700000000): the service's role unless already in it, the request, the user, the
 * organizations, every setting transaction-local.
 */
const setScope = (requestId: string, userId: string, organizations: string) =>
  `PERFORM CASE WHEN current_user <> '${APP_ROLE}' THEN set_config('role', '${APP_ROLE}', true) END, ` +
  `set_config('app.request_id', coalesce(${requestId}, ''), true), set_config('app.user_id', coalesce(${userId}, ''), true), ` +
  `set_config('app.org_ids', coalesce(${organizations}, ''), true);`;

const SET_SCOPE_CALL = /PERFORM app_set_scope\(([^,]+), ([^,]+), (.+)\);/g;

/**
 * `app_open_session` sets the transaction's role and settings with set_config itself instead of
 * calling `app_set_scope`. Called from PL/pgSQL, that SQL function cannot be inlined (it answers
 * several columns), so every call ran it through a new executor that parsed and planned its body
 * again: about a fifth of the bootstrap's PostgreSQL time, on every request (the bench user of 200
 * organizations, `BEGIN` + bootstrap + `COMMIT` from one connection, PostgreSQL's CPU per
 * transaction: about 0.6 → 0.47 ms). The function is migration 1766100000000's, each of its calls
 * of `app_set_scope` replaced by that function's body: the same steps in the same order, the same
 * answer. `app_set_scope` stays for the other callers.
 */
export function openSessionSettings(): string {
  const calls = OPEN_SESSION.match(SET_SCOPE_CALL)?.length ?? 0;
  const inlined = OPEN_SESSION.replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION').replace(SET_SCOPE_CALL, (_, requestId: string, userId: string, organizations: string) =>
    setScope(requestId, userId, organizations),
  );
  if (calls !== 5 || inlined.includes('app_set_scope')) throw new Error(`SessionSettings1766200000000: expected 5 calls of app_set_scope to inline, found ${calls}`);
  return inlined;
}

export class SessionSettings1766200000000 implements MigrationInterface {
  name = 'SessionSettings1766200000000';

  async up(q: QueryRunner): Promise<void> {
    // CREATE OR REPLACE keeps the function's owner and privileges (not callable by PUBLIC).
    await q.query(openSessionSettings());
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(OPEN_SESSION.replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION'));
  }
}
