import type { SqlQuery } from '../../database/tenant-transaction';
import { SYSTEM_ROLES } from '../../authz/permissions';
import { DEFAULT_BRANDING, DEFAULT_SECURITY, DEFAULT_SETTINGS, type OrganizationSettings } from './organization.types';

/**
 * Every column of an Organization, what a whole organization is read (and returned by a write)
 * with. Named rather than `*`: the columns only SQL reads (those generated from `security`,
 * migration 1766300000000) stay out of every row, and a prepared statement keeps its result type
 * when a column is added.
 */
export const ORGANIZATION_COLUMNS =
  'id, name, slug, description, website, logo_url, industry, primary_domain, contact_email, billing_email, support_tier, status, settings, security, branding, banner, created_by, created_at, updated_at, deleted_at, purge_at';

export interface NewOrganizationRow {
  id: string;
  name: string;
  slug: string;
  description?: string | null;
  website?: string | null;
  logoUrl?: string | null;
  billingEmail?: string | null;
  settings?: OrganizationSettings;
  createdBy: string | null;
}

export async function insertOrganizationRow(query: SqlQuery, o: NewOrganizationRow): Promise<Record<string, unknown>> {
  const [row] = await query(
    `INSERT INTO organizations (id, name, slug, description, website, logo_url, billing_email, settings, security, branding, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ${ORGANIZATION_COLUMNS}`,
    [
      o.id,
      o.name,
      o.slug,
      o.description ?? null,
      o.website ?? null,
      o.logoUrl ?? null,
      o.billingEmail ?? null,
      JSON.stringify(o.settings ?? DEFAULT_SETTINGS),
      JSON.stringify(DEFAULT_SECURITY),
      JSON.stringify(DEFAULT_BRANDING),
      o.createdBy,
    ],
  );
  return row!;
}

/**
 * What every organization has from birth: its system role rows and its default workspace. The
 * owner membership is added by the caller when there is an owner (the seeded organization waits
 * for ADMIN_EMAIL).
 */
export async function insertOrganizationSkeleton(query: SqlQuery, organizationId: string, createdBy: string | null): Promise<void> {
  await query(
    `INSERT INTO roles (organization_id, key, name, description, is_system)
     SELECT $1, k, n, d, true FROM unnest($2::text[], $3::text[], $4::text[]) AS r(k, n, d)`,
    [organizationId, SYSTEM_ROLES.map((r) => r.key), SYSTEM_ROLES.map((r) => r.name), SYSTEM_ROLES.map((r) => r.description)],
  );
  await query(
    `INSERT INTO workspaces (organization_id, name, slug, is_default, visibility, created_by) VALUES ($1, 'Default', 'default', true, 'ORGANIZATION', $2)`,
    [organizationId, createdBy],
  );
}
