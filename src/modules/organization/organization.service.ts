import { NotificationEmitter, OWNERS_AND_ADMINS } from '../notification/notification.emitter';
import { randomUUID } from 'node:crypto';
import { BadUserInputError, NotFoundError, plural, PreconditionFailedError, uniqueOrConflict } from '../../common/errors';
import { keysetAfter, keysetConnection, keysetPage, keysetParams, type ConnectionShape } from '../../common/pagination';
import { assertExplicitSlug, insertWithSlug, RESERVED_ORGANIZATION_SLUGS } from '../../common/slug';
import { optionalDomain, optionalEmail, optionalText, optionalUrl, requiredName } from '../../common/validation';
import { hydrator } from '../../database/hydrate';
import { oneOf } from '../../database/loader-helpers';
import type { RequestContext } from '../../context';
import { diffChanges, NO_CHANGES } from '../audit/audit.writer';
import { Organization } from './organization.entity';
import { ORGANIZATION_LIST_COLUMNS } from './organization.loaders';
import type { CreateOrganizationInput, UpdateOrganizationInput } from './organization.inputs';
import { insertOrganizationRow, insertOrganizationSkeleton, ORGANIZATION_COLUMNS } from './organization.rows';
import { insertInitialSubscription } from '../billing/subscription.rows';
import { DEFAULT_SETTINGS } from './organization.types';
import { mergeBranding, mergeSecurity, mergeSettings, validBanner } from './organization.validation';

const conflictMessage = (slug: string) => `Organization with slug '${slug}' already exists`;

/** Flattens the nested settings objects one level so audit `changes` names e.g. `settings.timezone`. */
function auditView(o: Organization): Record<string, unknown> {
  const view: Record<string, unknown> = {
    name: o.name,
    description: o.description,
    website: o.website,
    logoUrl: o.logoUrl,
    industry: o.industry,
    primaryDomain: o.primaryDomain,
    contactEmail: o.contactEmail,
    billingEmail: o.billingEmail,
    banner: o.banner,
  };
  for (const [group, values] of [['settings', o.settings], ['security', o.security], ['branding', o.branding]] as const) {
    for (const [k, v] of Object.entries(values ?? {})) view[`${group}.${k}`] = v;
  }
  return view;
}

/**
 * Organization lifecycle: list, create, update, change slug. Callers have passed the shield rules
 * (the one permission check); this checks what depends on state.
 */
export class OrganizationService {
  private readonly toOrganization;

  constructor(private readonly ctx: RequestContext) {
    this.toOrganization = hydrator(ctx.app.db.dataSource, Organization);
  }

  /**
   * The organizations the viewer may see, oldest first, keyset-paginated on (created_at, id).
   * `lean`: only ORGANIZATION_LIST_COLUMNS.lean, for a selection they serve (ListColumns.serves);
   * such entities lack the other columns, so they are not primed for anything else to read.
   */
  async listVisible(first: number | null | undefined, after: string | null | undefined, lean = false): Promise<ConnectionShape<Organization>> {
    const page = keysetPage(first, after);
    await this.ctx.access.requirePrincipal();
    const roles = await this.ctx.access.viewableOrganizations();
    const ids = [...roles.keys()];
    const owned = ids.filter((id) => roles.get(id) === 'owner');
    // A deleted organization stays visible to its owner only (to restore it); the owned ones only matter for a deleted one.
    const among = oneOf('id', 1, ids);
    const visible = `${among.sql} AND (status <> 'DELETED' OR id = ANY($2::uuid[]))`;
    const rows = await this.ctx.tx.query(
      `SELECT ${lean ? ORGANIZATION_LIST_COLUMNS.lean : ORGANIZATION_LIST_COLUMNS.full} FROM organizations WHERE ${visible} AND ${keysetAfter('created_at', 'id', 'asc', 3)} ORDER BY created_at, id LIMIT $5`,
      [among.param, owned, ...keysetParams(page), page.limit + 1],
    );
    const organizations = rows.map(this.toOrganization);
    if (!lean) for (const o of organizations) this.ctx.loaders.organizationById.prime(o.id, o);
    return keysetConnection(organizations, page, (o) => [o.createdAt, o.id], async () => {
      const [count] = await this.ctx.tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM organizations WHERE ${visible}`, [among.param, owned]);
      return count!.n;
    });
  }

  /** The caller becomes owner; the default workspace is part of it; one `organization.created` event. */
  async create(input: CreateOrganizationInput): Promise<Organization> {
    const viewer = await this.ctx.access.requireViewer();
    const name = requiredName(input.name);
    if (input.slug !== undefined && input.slug !== null) assertExplicitSlug(input.slug, 'slug', RESERVED_ORGANIZATION_SLUGS);
    const description = optionalText(input.description, 'description');
    const website = optionalUrl(input.website, 'website');
    const logoUrl = optionalUrl(input.logoUrl, 'logoUrl', 512);
    const billingEmail = optionalEmail(input.billingEmail, 'billingEmail') ?? viewer.email;
    const settings = input.settings ? mergeSettings(DEFAULT_SETTINGS, input.settings, DEFAULT_SETTINGS) : DEFAULT_SETTINGS;

    return this.ctx.mutate(async () => {
      const query = this.ctx.tx.query;
      const id = randomUUID();
      // The new organization enters the principal's scope before its first row is written (and
      // leaves it again, with the savepoint, if the creation fails).
      await this.ctx.joined(id, 'owner');
      const { row } = await insertWithSlug({
        query,
        savepoint: (fn) => this.ctx.tx.savepoint(fn),
        scope: 'organizations.slug',
        explicit: input.slug,
        name,
        fallback: 'organization',
        reserved: RESERVED_ORGANIZATION_SLUGS,
        taken: async (candidates) => (await query<{ s: string }>(`SELECT organization_slugs_taken($1::text[]) AS s`, [candidates])).map((r) => r.s),
        insert: (slug) => insertOrganizationRow(query, { id, name, slug, description, website, logoUrl, billingEmail, settings, createdBy: viewer.userId }),
        constraint: 'organizations_slug_key',
        conflictMessage,
      });
      await insertOrganizationSkeleton(query, id, viewer.userId);
      await insertInitialSubscription(query, id, this.ctx.config.trialDays);
      await query(`INSERT INTO memberships (organization_id, user_id, role_key) VALUES ($1, $2, 'owner')`, [id, viewer.userId]);
      const organization = this.toOrganization(row);
      await this.ctx.audit.record({
        organizationId: id,
        action: 'organization.created',
        resourceType: 'organization',
        resourceId: id,
        resourceName: organization.name,
        metadata: { slug: organization.slug },
      });
      return organization;
    });
  }

  /** The next state of an organization from a PATCH (omitted: unchanged; null: cleared), validated. */
  private applyUpdate(current: Organization, input: UpdateOrganizationInput): Organization {
    const next: Organization = { ...current };
    if (input.name !== undefined) next.name = requiredName(input.name);
    if (input.description !== undefined) next.description = optionalText(input.description, 'description');
    if (input.website !== undefined) next.website = optionalUrl(input.website, 'website');
    if (input.logoUrl !== undefined) next.logoUrl = optionalUrl(input.logoUrl, 'logoUrl', 512);
    if (input.industry !== undefined) next.industry = optionalText(input.industry, 'industry', 100);
    if (input.primaryDomain !== undefined) next.primaryDomain = optionalDomain(input.primaryDomain, 'primaryDomain');
    if (input.contactEmail !== undefined) next.contactEmail = optionalEmail(input.contactEmail, 'contactEmail');
    if (input.billingEmail !== undefined) next.billingEmail = optionalEmail(input.billingEmail, 'billingEmail');
    if (input.settings === null) throw new BadUserInputError('settings', 'settings cannot be null; omit it to leave it unchanged');
    if (input.security === null) throw new BadUserInputError('security', 'security cannot be null; omit it to leave it unchanged');
    if (input.branding === null) throw new BadUserInputError('branding', 'branding cannot be null; omit it to leave it unchanged');
    if (input.settings) next.settings = mergeSettings(current.settings, input.settings, DEFAULT_SETTINGS);
    if (input.security) next.security = mergeSecurity(current.security, input.security, { clientIp: this.ctx.origin.ipAddress, principal: this.ctx.principal, nowSeconds: Math.floor(Date.now() / 1000) });
    if (input.branding) next.branding = mergeBranding(current.branding, input.branding);
    if (input.banner !== undefined) next.banner = validBanner(input.banner);
    return next;
  }

  /** Locks the row for the rest of the mutation: concurrent changes apply one after the other. */
  private async lock(id: string): Promise<Organization> {
    const [row] = await this.ctx.tx.query(`SELECT ${ORGANIZATION_COLUMNS} FROM organizations WHERE id = $1 FOR UPDATE`, [id]);
    if (!row) throw new NotFoundError('Organization');
    return this.toOrganization(row);
  }

  async update(id: string, input: UpdateOrganizationInput): Promise<Organization> {
    // Input errors precede the read-only check of ctx.mutate (SPEC §6): validated here on the row as
    // the request found it, and again under the lock below.
    this.applyUpdate(await this.ctx.access.organization(id), input);
    return this.ctx.mutate(async () => {
      // Computed from the locked row, not from what was read before: two admins changing different
      // fields at once must not revert each other (nor record wrong oldValues).
      const current = await this.lock(id);
      const next = this.applyUpdate(current, input);
      const changes = diffChanges(auditView(current), auditView(next), Object.keys(auditView(next)));
      const [row] = await this.ctx.tx.query(
        `UPDATE organizations SET name = $2, description = $3, website = $4, logo_url = $5, industry = $6, primary_domain = $7,
           contact_email = $8, billing_email = $9, settings = $10, security = $11, branding = $12, banner = $13,
           updated_at = CASE WHEN $14 THEN now() ELSE updated_at END
         WHERE id = $1 RETURNING ${ORGANIZATION_COLUMNS}`,
        [
          id,
          next.name,
          next.description,
          next.website,
          next.logoUrl,
          next.industry,
          next.primaryDomain,
          next.contactEmail,
          next.billingEmail,
          JSON.stringify(next.settings),
          JSON.stringify(next.security),
          JSON.stringify(next.branding),
          next.banner ? JSON.stringify(next.banner) : null,
          changes !== null,
        ],
      );
      const updated = this.toOrganization(row!);
      await this.ctx.audit.record({
        organizationId: id,
        action: 'organization.updated',
        resourceType: 'organization',
        resourceId: id,
        resourceName: updated.name,
        changes: changes ?? NO_CHANGES,
      });
      const securityFields = (changes?.changedFields ?? []).filter((f) => f.startsWith('security.'));
      if (securityFields.length > 0) {
        await new NotificationEmitter(this.ctx).emit(
          id,
          {
            type: 'security.settings_changed',
            title: `Security settings of ${updated.name} changed`,
            body: `Changed: ${securityFields.map((f) => f.slice('security.'.length)).join(', ')}.`,
            metadata: { changedFields: securityFields },
          },
          OWNERS_AND_ADMINS,
        );
      }
      return updated;
    });
  }

  /** Only while no environment is active: running environments may be addressed by the slug. */
  async changeSlug(id: string, slug: string): Promise<Organization> {
    await this.ctx.access.organization(id);
    assertExplicitSlug(slug, 'slug', RESERVED_ORGANIZATION_SLUGS);
    return this.ctx.mutate(async () => {
      // The row lock makes a concurrent createEnvironment (which takes FOR SHARE on it) wait or be seen.
      const current = await this.lock(id);
      const [{ active }] = (await this.ctx.tx.query<{ active: number }>(
        `SELECT count(*)::int AS active FROM environments WHERE organization_id = $1 AND is_active`,
        [id],
      )) as [{ active: number }];
      if (active > 0) {
        throw new PreconditionFailedError(
          'ACTIVE_ENVIRONMENTS',
          `Cannot change the slug of an organization with ${plural(active, 'active environment')}: running environments may be addressed by it. Destroy ${active === 1 ? 'it' : 'them'} first.`,
        );
      }
      const [row] = await uniqueOrConflict(
        (fn) => this.ctx.tx.savepoint(fn),
        () => this.ctx.tx.query(`UPDATE organizations SET slug = $2, updated_at = now() WHERE id = $1 RETURNING ${ORGANIZATION_COLUMNS}`, [id, slug]),
        { constraint: 'organizations_slug_key', message: conflictMessage(slug), field: 'slug' },
      );
      const updated = this.toOrganization(row!);
      await this.ctx.audit.record({
        organizationId: id,
        action: 'organization.slug_changed',
        resourceType: 'organization',
        resourceId: id,
        resourceName: updated.name,
        changes: diffChanges({ slug: current.slug }, { slug: updated.slug }, ['slug']) ?? NO_CHANGES,
      });
      return updated;
    });
  }
}
