import type { TestApp } from './app';
import { inRollback, readAll } from './db';

/** A user principal as the service describes it to the bootstrap, for a user the app already knows by email. */
export async function userPrincipal(app: TestApp, email: string): Promise<Record<string, unknown>> {
  const [user] = await readAll<{ subject: string }>(app, `SELECT subject FROM users WHERE email = $1`, [email]);
  return { kind: 'user', subject: user!.subject, email, emailVerified: true, name: null, picture: null };
}

/** What a bootstrap function answered, and the transaction's settings and role right after it. */
export interface Opened {
  s: Record<string, unknown>;
  scope: string;
  user_id: string;
  request_id: string;
  role: string;
}

/** Calls a bootstrap function (`fn`) in a transaction of its own, rolled back, as the service's login role does. */
export async function openSessionAs(app: TestApp, fn: string, described: Record<string, unknown>, requestId = 'test'): Promise<Opened> {
  return inRollback(app, async (runner) => {
    const [row] = await runner.query(
      `SELECT ${fn}($1, $2::jsonb) AS s, current_setting('app.org_ids') AS scope, current_setting('app.user_id') AS user_id,
              current_setting('app.request_id') AS request_id, current_user AS role`,
      [requestId, JSON.stringify(described)],
    );
    return row as Opened;
  });
}

/**
 * `opened` with its lists in organization id order: the organizations with their role keys (two
 * aligned lists, or `id:role` pairs) and the scope. Since migration 1766500000000 the bootstrap
 * answers them in that order (from membership_scopes); before, in the order its aggregate read
 * the memberships. The order carries no meaning (only the alignment does), so a comparison with
 * a former function compares them in one order.
 */
export function inOrganizationOrder(opened: Opened): Opened {
  const sorted = (list: string[]) => [...list].sort();
  const s = { ...opened.s };
  if (typeof s.organizations === 'string' && typeof s.roles === 'string' && s.organizations !== '' && !s.roles.includes(':')) {
    const roles = s.roles.split(',');
    const pairs = s.organizations.split(',').map((id, i) => [id, roles[i]] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    s.organizations = pairs.map(([id]) => id).join(',');
    s.roles = pairs.map(([, role]) => role).join(',');
  } else if (typeof s.roles === 'string' && s.roles.includes(':')) {
    s.roles = sorted(s.roles.split(',')).join(',');
  }
  return { ...opened, s, scope: opened.scope === '' ? '' : sorted(opened.scope.split(',')).join(',') };
}
