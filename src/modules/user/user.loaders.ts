import type DataLoader from 'dataloader';
import type { DataSource } from 'typeorm';
import { keyedLoader, oneOf } from '../../database/loader-helpers';
import { hydrator } from '../../database/hydrate';
import type { SqlQuery } from '../../database/tenant-transaction';
import { User } from './user.entity';

/** The columns of a user the API may show (never `subject`). */
export const USER_COLUMNS = 'id, email, email_verified, name, avatar_url, created_at, updated_at';

/** `SELECT …, ${userJson('u')} AS user_row … JOIN users u`: a joined user, hydrated with `hydrateJoinedUser`. */
export const userJson = (alias: string): string => `jsonb_build_object('id', ${alias}.id, 'email', ${alias}.email, 'email_verified', ${alias}.email_verified,
  'name', ${alias}.name, 'avatar_url', ${alias}.avatar_url, 'created_at', ${alias}.created_at, 'updated_at', ${alias}.updated_at)`;

export function userLoaders(query: SqlQuery, ds: DataSource) {
  const toUser = hydrator(ds, User);
  return {
    /** Row-level security lets a principal see itself and the users it shares an organization with: no one else comes back. */
    userById: keyedLoader<string, User>(async (ids) => {
      const k = oneOf('id', 1, ids);
      return (await query(`SELECT ${USER_COLUMNS} FROM users WHERE ${k.sql}`, [k.param])).map(toUser);
    }, (u) => u.id),
  };
}

/**
 * Primes the user loader with users a statement read along with their parent (a member, an
 * owner): the response then needs no statement of its own for them.
 */
export function userPrimer(ds: DataSource, userById: DataLoader<string, User | null, unknown>): (row: { user_row?: unknown }) => void {
  const toUser = hydrator(ds, User);
  return (row) => {
    if (row.user_row && typeof row.user_row === 'object') {
      const user = toUser(row.user_row as Record<string, unknown>);
      userById.clear(user.id).prime(user.id, user);
    }
  };
}
