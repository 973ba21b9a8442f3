import type { DataSource } from 'typeorm';
import { keyedLoader } from '../../database/loader-helpers';
import { hydrator } from '../../database/hydrate';
import type { SqlQuery } from '../../database/tenant-transaction';
import { User } from './user.entity';

export function userLoaders(query: SqlQuery, ds: DataSource) {
  const toUser = hydrator(ds, User);
  return {
    userById: keyedLoader<string, User>(async (ids) => (await query(`SELECT * FROM users WHERE id = ANY($1::uuid[])`, [ids])).map(toUser), (u) => u.id),
    /** Users who share at least one organization with the viewer (or are the viewer): the only ones it may see. */
    visibleUserIds: keyedLoader<string, { user_id: string }>(
      (ids) => query(`SELECT DISTINCT user_id FROM memberships WHERE user_id = ANY($1::uuid[])`, [ids]),
      (r) => r.user_id,
    ),
  };
}
