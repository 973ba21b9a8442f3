import type DataLoader from 'dataloader';
import type { DataSource } from 'typeorm';
import { keyedLoader, oneOf } from '../../database/loader-helpers';
import { hydrator } from '../../database/hydrate';
import { ListColumns } from '../../database/projection';
import type { SqlQuery } from '../../database/tenant-transaction';
import { User } from './user.entity';

/** What a list of users usually shows (a page of members): who they are, and their picture. */
const LEAN_USER_COLUMNS = ['id', 'email', 'name', 'avatar_url'];
/** And the rest of what the API may show of a user (never `subject`). */
const FULL_USER_COLUMNS = [...LEAN_USER_COLUMNS, 'email_verified', 'created_at', 'updated_at'];

/** The columns of a user the API may show (never `subject`). */
export const USER_COLUMNS = FULL_USER_COLUMNS.join(', ');

/**
 * What users read along with a list (a page of members) carry: the lean columns serve these
 * fields (see ListColumns). A user read lean goes only to the lean loader (leanUserById), never to
 * userById, which answers every other field of a user.
 */
export const USER_LIST_COLUMNS = new ListColumns(LEAN_USER_COLUMNS.join(', '), USER_COLUMNS, ['id', 'email', 'name', 'avatarUrl']);

/** Which of USER_LIST_COLUMNS a statement reads. */
export type UserColumns = 'lean' | 'full';

/** `SELECT …, ${userJson('u')} AS user_row … JOIN users u`: a joined user (`columns`: all of USER_COLUMNS, or the lean ones), primed with userPrimer. */
export const userJson = (alias: string, columns: UserColumns = 'full'): string =>
  `jsonb_build_object(${(columns === 'lean' ? LEAN_USER_COLUMNS : FULL_USER_COLUMNS).map((c) => `'${c}', ${alias}.${c}`).join(', ')})`;

export function userLoaders(query: SqlQuery, ds: DataSource) {
  const toUser = hydrator(ds, User);
  return {
    /** Row-level security lets a principal see itself and the users it shares an organization with: no one else comes back. */
    userById: keyedLoader<string, User>(async (ids) => {
      const k = oneOf('id', 1, ids);
      return (await query(`SELECT ${USER_COLUMNS} FROM users WHERE ${k.sql}`, [k.param])).map(toUser);
    }, (u) => u.id),
    /**
     * The same with only USER_LIST_COLUMNS.lean: for a user field whose selection they serve. A
     * page of members reading lean users primes it (and one reading whole users primes both).
     */
    leanUserById: keyedLoader<string, User>(async (ids) => {
      const k = oneOf('id', 1, ids);
      return (await query(`SELECT ${USER_LIST_COLUMNS.lean} FROM users WHERE ${k.sql}`, [k.param])).map(toUser);
    }, (u) => u.id),
  };
}

/**
 * Primes user loaders with users a statement read along with their parent (a member, an owner):
 * the response then needs no statement of its own for them. Each loader must take the columns
 * read (a lean user only into leanUserById).
 */
export function userPrimer(ds: DataSource, ...loaders: Array<DataLoader<string, User | null, unknown>>): (row: { user_row?: unknown }) => void {
  const toUser = hydrator(ds, User);
  return (row) => {
    if (row.user_row && typeof row.user_row === 'object') {
      const user = toUser(row.user_row as Record<string, unknown>);
      for (const loader of loaders) loader.clear(user.id).prime(user.id, user);
    }
  };
}
