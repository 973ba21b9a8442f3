import { keysetAfter, keysetConnection, keysetPage, keysetParams, type ConnectionShape } from '../../common/pagination';
import { BadUserInputError } from '../../common/errors';
import { isUuid } from '../../common/validation';
import type { RequestContext } from '../../context';
import { Notification, NOTIFICATION_COLUMNS } from './notification.types';

/** At most this many ids per markNotificationsRead call. */
export const MARK_READ_MAX_IDS = 1000;

/**
 * The viewer's inbox across their organizations (SPEC §5). Row-level security shows a row only to
 * its recipient, and only while they are a member of its organization (an invitee sees the
 * `member.invited` row of their invitation); the queries still name the viewer, so a bug here
 * could not widen it either.
 */
export class NotificationInboxService {
  constructor(private readonly ctx: RequestContext) {}

  async list(first: number | null | undefined, after: string | null | undefined, unreadOnly: boolean | null | undefined): Promise<ConnectionShape<Notification>> {
    const viewer = await this.ctx.access.requireViewer();
    const page = keysetPage(first, after);
    const unread = unreadOnly === true;
    const rows = await this.ctx.tx.query<Notification>(
      `SELECT ${NOTIFICATION_COLUMNS} FROM notifications
       WHERE user_id = $1 AND ($2::boolean IS FALSE OR read_at IS NULL) AND ${keysetAfter('created_at', 'id', 'desc', 3)}
       ORDER BY created_at DESC, id DESC LIMIT $5`,
      [viewer.userId, unread, ...keysetParams(page), page.limit + 1],
    );
    const nodes = rows.map((r) => Object.assign(new Notification(), r));
    return keysetConnection(nodes, page, (n) => [n.createdAt, n.id], async () => {
      const [row] = await this.ctx.tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM notifications WHERE user_id = $1 AND ($2::boolean IS FALSE OR read_at IS NULL)`, [
        viewer.userId,
        unread,
      ]);
      return row?.n ?? 0;
    });
  }

  async unreadCount(): Promise<number> {
    const viewer = await this.ctx.access.requireViewer();
    const [row] = await this.ctx.tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM notifications WHERE user_id = $1 AND read_at IS NULL`, [viewer.userId]);
    return row?.n ?? 0;
  }

  /**
   * Marks the viewer's unread notifications read: those of `ids` (ids of others' notifications,
   * unknown or malformed ones are ignored), or all of them when `ids` is null. Returns how many
   * changed. A personal read state, across organizations: not an audited change of any of them.
   */
  async markRead(ids: readonly string[] | null | undefined): Promise<number> {
    const viewer = await this.ctx.access.requireViewer();
    if (ids && ids.length > MARK_READ_MAX_IDS) throw new BadUserInputError('ids', `at most ${MARK_READ_MAX_IDS} ids at once`);
    const wanted = ids ? ids.filter((id) => isUuid(id)) : null;
    if (wanted && wanted.length === 0) return 0;
    return this.ctx.mutate(async () => {
      const rows = await this.ctx.tx.query<{ id: string }>(
        `UPDATE notifications SET read_at = now() WHERE user_id = $1 AND read_at IS NULL AND ($2::uuid[] IS NULL OR id = ANY ($2::uuid[])) RETURNING id`,
        [viewer.userId, wanted],
      );
      return rows.length;
    });
  }
}
