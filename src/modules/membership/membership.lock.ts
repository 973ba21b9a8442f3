import { OPERATION_GUARDS } from '../../authz/operations';
import { NotFoundError } from '../../common/errors';
import type { RequestContext } from '../../context';
import type { SqlQuery } from '../../database/tenant-transaction';

/** The mutations that take this lock (their guard's permission is re-checked under it). */
export type LockingMutation = 'updateMemberRole' | 'removeMember' | 'leaveOrganization' | 'transferOwnership' | 'createRole' | 'updateRole' | 'deleteRole' | 'inviteMember';

/**
 * The one lock of an organization's membership and roles (SPEC §5: exactly one owner at all times,
 * whatever runs concurrently).
 *
 * Why one lock, and why the organization row:
 * - The database holds half of the invariant: the partial unique index `memberships_one_owner`
 *   makes two owners impossible. Zero owners is what code must prevent, and a check-then-write
 *   ("is the target the last owner?" then DELETE/UPDATE) is only sound if nothing that moves the
 *   owner role can run between the check and the write.
 * - Every mutation that can move, remove or demote a role — `updateMemberRole`, `removeMember`,
 *   `leaveOrganization`, `transferOwnership` — and every mutation of custom roles (so that the
 *   permissions an escalation check reads cannot change under it) first takes this lock, as its
 *   first statement, then reads everything it decides on. One lock per organization, always the
 *   first one taken: there is no second lock taken in another order, so no deadlock between them.
 * - Not "the owner's membership row": the owner row changes identity during a transfer, and a
 *   waiter re-evaluating `WHERE role_key = 'owner' FOR UPDATE` after the transfer commits would
 *   find no row at all. The organization row always exists and never moves.
 * - `FOR NO KEY UPDATE` does not block the `FOR KEY SHARE` locks that foreign-key checks take
 *   (inserting a workspace or an audit event of the organization goes on); it does queue behind
 *   and block `FOR SHARE` (environment creation), briefly.
 * - Under READ COMMITTED each statement after the lock is granted sees everything the previous
 *   holder committed, so the checks below (`freshRole`, the target's role) are made on the state
 *   the write will apply to. Any interleaving of these mutations is therefore equivalent to some
 *   serial order, and each of them, run alone on a state with one owner, leaves one owner.
 *
 * The caller's own role is re-read under the lock too: the shield rule that let the request in
 * read it at the start of the request, and a concurrent transfer or demotion may have changed it
 * since (an owner who just handed ownership over is an admin now and may no longer change the new
 * owner). The session's role follows (so the escalation checks of Access use it), and a caller
 * who was removed meanwhile gets NOT_FOUND, as on their next request.
 */
export async function lockMembership(ctx: RequestContext, organizationId: string, mutation: LockingMutation): Promise<string> {
  const query = ctx.tx.query;
  await lockOrganizationMembership(ctx, organizationId);
  const viewer = await ctx.access.requireViewer();
  const [own] = await query<{ role_key: string }>(`SELECT role_key FROM memberships WHERE organization_id = $1 AND user_id = $2`, [organizationId, viewer.userId]);
  if (!own) throw new NotFoundError('Organization');
  // Roles and their permissions as of now (a custom role may have been edited since the request began).
  ctx.loaders.rolesByOrganization.clear(organizationId);
  if ((await ctx.access.roleIn(organizationId)) !== own.role_key) await ctx.tx.widen(organizationId, own.role_key);
  ctx.access.reset();
  // The shield rule's own check, made again on the role as it is now (not a second rule: the same guard).
  const guard = OPERATION_GUARDS.Mutation[mutation];
  if (guard && 'permission' in guard) await ctx.access.assertOrg(organizationId, guard.permission);
  return own.role_key;
}

/**
 * Only the lock, for a principal who is not a member yet (accepting or declining an invitation):
 * the membership it adds, with the role it names, cannot interleave with a role's deletion or a
 * change of the roles the escalation checks read.
 */
export async function lockOrganizationMembership(ctx: RequestContext, organizationId: string): Promise<void> {
  if (!(await lockOrganizationRow(ctx.tx.query, organizationId))) throw new NotFoundError('Organization');
}

/**
 * The statement of the lock: the organization row `FOR NO KEY UPDATE` (false when it does not
 * exist). The quota checker (src/modules/quota/quota.checker.ts) takes the same lock, so member
 * changes, invitations and every quota-consuming create of an organization share one order.
 */
export async function lockOrganizationRow(query: SqlQuery, organizationId: string): Promise<boolean> {
  const [organization] = await query(`SELECT 1 FROM organizations WHERE id = $1 FOR NO KEY UPDATE`, [organizationId]);
  return organization !== undefined;
}
