import type DataLoader from 'dataloader';
import type { DataSource } from 'typeorm';
import { keyedLoader, oneOf, PrimedLoader } from '../../database/loader-helpers';
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
 * fields (see ListColumns). A user read lean goes only to leanUserById, never to userById, which
 * answers every other field of a user.
 */
export const USER_LIST_COLUMNS = new ListColumns(LEAN_USER_COLUMNS.join(', '), USER_COLUMNS, ['id', 'email', 'name', 'avatarUrl']);

/** Which of USER_LIST_COLUMNS a statement reads. */
export type UserColumns = 'lean' | 'full';

/** `SELECT …, ${userJson('u')} AS user_row … JOIN users u`: a joined user (`columns`: all of USER_COLUMNS, or the lean ones), primed with userPrimer. */
export const userJson = (alias: string, columns: UserColumns = 'full'): string =>
  `jsonb_build_object(${(columns === 'lean' ? LEAN_USER_COLUMNS : FULL_USER_COLUMNS).map((c) => `'${c}', ${alias}.${c}`).join(', ')})`;

export function userLoaders(query: SqlQuery, ds: DataSource) {
  const toUser = hydrator(ds, User);
  /** Row-level security lets a principal see itself and the users it shares an organization with: no one else comes back. */
  const userById = keyedLoader<string, User>(async (ids) => {
    const k = oneOf('id', 1, ids);
    return (await query(`SELECT ${USER_COLUMNS} FROM users WHERE ${k.sql}`, [k.param])).map(toUser);
  }, (u) => u.id);
  return {
    userById,
    /**
     * A user for a selection USER_LIST_COLUMNS.lean serves: the lean one a page of members read
     * along (primed), else the whole one (userById: no statement of its own for a user the
     * request has already read, such as the viewer).
     */
    leanUserById: new PrimedLoader<string, User | null>((ids) => userById.loadMany(ids)),
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
