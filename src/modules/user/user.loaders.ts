import type { DataSource } from 'typeorm';
import { keyedLoader } from '../../database/loader-helpers';
import { hydrator } from '../../database/hydrate';
import type { SqlQuery } from '../../database/tenant-transaction';
import { User } from './user.entity';

export function userLoaders(query: SqlQuery, ds: DataSource) {
  const toUser = hydrator(ds, User);
  return {
    /** Row-level security lets a principal see itself and the users it shares an organization with: no one else comes back. */
    userById: keyedLoader<string, User>(async (ids) => (await query(`SELECT id, email, email_verified, name, avatar_url, created_at, updated_at FROM users WHERE id = ANY($1::uuid[])`, [ids])).map(toUser), (u) => u.id),
  };
}
