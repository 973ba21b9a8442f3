import { keysetConnection, keysetPage, type ConnectionShape } from '../../common/pagination';
import type { RequestContext } from '../../context';
import type { UserColumns } from '../user/user.loaders';
import type { MemberFilter } from './membership.loaders';
import { Membership } from './membership.entity';

/** Members and their roles. Callers have passed the shield rules. */
export class MembershipService {
  constructor(private readonly ctx: RequestContext) {}

  /** Members oldest first, keyset-paginated on (joined_at, id); batched across organizations; their users read with `userColumns` (default: whole). */
  async list(
    organizationId: string,
    first: number | null | undefined,
    after: string | null | undefined,
    /** `roles: false`: the page reads no role (each membership's role key answers a selection of `key` alone). */
    options: { roleKey?: string | null; search?: string | null; userColumns?: UserColumns; roles?: boolean },
  ): Promise<ConnectionShape<Membership>> {
    const page = keysetPage(first, after);
    const search = options.search?.trim().toLowerCase();
    const filter: MemberFilter = { roleKey: options.roleKey ?? null, pattern: search ? `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null };
    const pages = options.userColumns === 'lean' ? this.ctx.loaders.leanMemberPage : this.ctx.loaders.memberPage;
    const rows = await pages.load({ ownerId: organizationId, limit: page.limit + 1, after: page.after, filter: { ...filter, roles: options.roles ?? true } });
    return keysetConnection(rows, page, (m) => [m.joinedAt, m.id], () => this.ctx.loaders.filteredMemberCount.load({ ownerId: organizationId, filter }));
  }
}
