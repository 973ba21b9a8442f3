import { BadUserInputError, ForbiddenError, MfaRequiredError, OrganizationInactiveError, PreconditionFailedError } from '../../common/errors';
import { hydrator } from '../../database/hydrate';
import type { RequestContext } from '../../context';
import { lockMembership } from '../membership/membership.lock';
import { deletionImpacts } from './organization-deletion.impact';
import { Organization } from './organization.entity';
import { ORGANIZATION_COLUMNS } from './organization.rows';
import { OrganizationStatus } from './organization.types';

/** SPEC §5's message, word for word, whatever the count. */
export const activeEnvironmentsMessage = (count: number): string =>
  `Cannot delete organization with ${count} active environments. Please destroy all environments first.`;

/**
 * Soft deletion and restore of an organization (SPEC §5). Both are owner-only and run under the
 * organization's membership lock (src/modules/membership/membership.lock.ts): the owner cannot
 * change hands meanwhile, and since that lock (FOR NO KEY UPDATE on the organization row) queues
 * behind and blocks the FOR SHARE lock environment creation takes, the count of active
 * environments cannot be overtaken by a concurrent createEnvironment.
 *
 * The purge after `purgeAt` is the job in src/jobs/organization-purge.job.ts.
 *
 * API keys do not exist yet: when they land, a key (and a token exchanged from it) of a DELETED
 * organization must be UNAUTHENTICATED (SPEC §2), checked on every request.
 */
export class OrganizationDeletionService {
  private readonly toOrganization;

  constructor(private readonly ctx: RequestContext) {
    this.toOrganization = hydrator(ctx.app.db.dataSource, Organization);
  }

  /**
   * SPEC §6 order: NOT_FOUND/FORBIDDEN (the shield rule, then owner only) → BAD_USER_INPUT
   * (`confirmSlug`) → MFA_REQUIRED → ORGANIZATION_INACTIVE (already deleted) → PRECONDITION_FAILED
   * (active environments, an active paid subscription).
   */
  async delete(id: string, confirmSlug: string): Promise<Organization> {
    // Checked first on the organization as the request found it (so that input and MFA errors
    // precede the read-only check every mutation passes), and again under the lock.
    this.assertConfirmed(await this.ctx.access.organization(id), confirmSlug);
    return this.ctx.mutate(async () => {
      if ((await lockMembership(this.ctx, id, 'deleteOrganization')) !== 'owner') throw new ForbiddenError('Only the owner can delete the organization');
      const current = await this.current(id);
      this.assertConfirmed(current, confirmSlug);
      if (current.status === OrganizationStatus.DELETED) throw new OrganizationInactiveError(OrganizationStatus.DELETED);
      const [impact] = await deletionImpacts(this.ctx.tx.query, [id]);
      const active = impact?.activeEnvironments ?? 0;
      if (active > 0) throw new PreconditionFailedError('ACTIVE_ENVIRONMENTS', activeEnvironmentsMessage(active), { activeEnvironments: active });
      if (impact?.blockers.includes('ACTIVE_SUBSCRIPTION')) {
        throw new PreconditionFailedError('ACTIVE_SUBSCRIPTION', 'Cannot delete an organization with an active paid subscription. Cancel the subscription first.');
      }
      // Due time in the database's clock: the purge job compares purge_at with now() of the same clock.
      const [row] = await this.ctx.tx.query(
        `UPDATE organizations SET status = 'DELETED', deleted_at = now(), purge_at = now() + make_interval(days => $2::int), updated_at = now()
         WHERE id = $1 RETURNING ${ORGANIZATION_COLUMNS}`,
        [id, this.ctx.config.retentionDays],
      );
      const deleted = this.toOrganization(row!);
      await this.ctx.audit.record({
        organizationId: id,
        action: 'organization.deleted',
        resourceType: 'organization',
        resourceId: id,
        resourceName: deleted.name,
        changes: { changedFields: ['status'], oldValues: { status: current.status }, newValues: { status: deleted.status } },
        metadata: { slug: deleted.slug, deletedAt: deleted.deletedAt?.toISOString(), purgeAt: deleted.purgeAt?.toISOString(), retentionDays: this.ctx.config.retentionDays },
      });
      return deleted;
    });
  }

  /**
   * Brings a soft-deleted organization back (status ACTIVE) before its `purgeAt`. Not deleted:
   * PRECONDITION_FAILED `ORGANIZATION_NOT_DELETED`; past `purgeAt` (the purge is due, the job may
   * already be at it): PRECONDITION_FAILED `RETENTION_EXPIRED`.
   */
  async restore(id: string): Promise<Organization> {
    await this.ctx.access.organization(id);
    return this.ctx.mutate(async () => {
      if ((await lockMembership(this.ctx, id, 'restoreOrganization')) !== 'owner') throw new ForbiddenError('Only the owner can restore the organization');
      const [state] = await this.ctx.tx.query<{ status: string; expired: boolean }>(
        `SELECT status, coalesce(purge_at <= now(), false) AS expired FROM organizations WHERE id = $1`,
        [id],
      );
      if (state?.status !== OrganizationStatus.DELETED) throw new PreconditionFailedError('ORGANIZATION_NOT_DELETED', 'The organization is not deleted');
      if (state.expired) throw new PreconditionFailedError('RETENTION_EXPIRED', 'The retention period of this organization has ended: it is being purged and can no longer be restored');
      const [row] = await this.ctx.tx.query(
        `UPDATE organizations SET status = 'ACTIVE', deleted_at = NULL, purge_at = NULL, updated_at = now() WHERE id = $1 RETURNING ${ORGANIZATION_COLUMNS}`,
        [id],
      );
      const restored = this.toOrganization(row!);
      await this.ctx.audit.record({
        organizationId: id,
        action: 'organization.restored',
        resourceType: 'organization',
        resourceId: id,
        resourceName: restored.name,
        changes: { changedFields: ['status'], oldValues: { status: OrganizationStatus.DELETED }, newValues: { status: restored.status } },
        metadata: { slug: restored.slug },
      });
      return restored;
    });
  }

  /** BAD_USER_INPUT unless confirmSlug is exactly the slug; MFA_REQUIRED when the organization requires MFA and the token has none. */
  private assertConfirmed(organization: Organization, confirmSlug: string): void {
    if (confirmSlug !== organization.slug) throw new BadUserInputError('confirmSlug', "confirmSlug must be exactly the organization's slug");
    const mfa = this.ctx.principal.kind === 'user' && this.ctx.principal.identity.mfa;
    if (organization.security?.requireMfa && !mfa) throw new MfaRequiredError('Deleting this organization requires multi-factor authentication');
  }

  /** The organization row as it is under the lock. */
  private async current(id: string): Promise<Organization> {
    const [row] = await this.ctx.tx.query(`SELECT ${ORGANIZATION_COLUMNS} FROM organizations WHERE id = $1`, [id]);
    return this.toOrganization(row!);
  }
}
