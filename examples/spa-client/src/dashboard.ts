/**
 * What a page of the SPA does with the typed documents: every value below is typed from the
 * selection in documents.ts (rename a field there, or in the schema, and this stops compiling).
 */
import { type Request, GraphQLRequestError } from './client';
import { CreateWorkspaceMutation, MeQuery, OrganizationDashboardQuery } from './documents';
import type { EnvironmentTier, OrganizationDashboardQuery as Dashboard } from './gql/graphql';

export interface WorkspaceCard {
  slug: string;
  name: string;
  environments: Array<{ slug: string; tier: EnvironmentTier; active: boolean }>;
}

/** The organizations of the signed-in user, for the switcher. */
export async function organizationSwitcher(request: Request): Promise<Array<{ slug: string; label: string }>> {
  const { me } = await request(MeQuery);
  return me.memberships.map((m) => ({ slug: m.organization.slug, label: `${m.organization.name} (${m.role.name})` }));
}

/** The dashboard of one organization; null when it does not exist or is not the user's (NOT_FOUND). */
export async function loadDashboard(request: Request, slug: string): Promise<Dashboard['organization']> {
  try {
    const { organization } = await request(OrganizationDashboardQuery, { slug, workspaces: 25 });
    return organization;
  } catch (error) {
    if (error instanceof GraphQLRequestError && error.codes.includes('NOT_FOUND')) return null;
    throw error;
  }
}

export function workspaceCards(organization: NonNullable<Dashboard['organization']>): WorkspaceCard[] {
  return organization.workspaces.nodes.map((w) => ({
    slug: w.slug,
    name: w.name,
    environments: w.environments.map((e) => ({ slug: e.slug, tier: e.tier, active: e.isActive })),
  }));
}

/** `members` is null (with FORBIDDEN) for a role without org.members.list: the type says so. */
export function memberEmails(organization: NonNullable<Dashboard['organization']>): string[] {
  return organization.members?.nodes.map((m) => m.user.email) ?? [];
}

export async function addWorkspace(request: Request, organizationId: string, name: string): Promise<string> {
  const { createWorkspace } = await request(CreateWorkspaceMutation, {
    organizationId,
    input: { name, visibility: 'RESTRICTED' },
  });
  return createWorkspace.slug;
}

/**
 * Compile-time checks: each line below must NOT type-check. If the generated types ever
 * degraded to `any`, these @ts-expect-error lines would themselves fail `tsc`.
 */
export async function misuses(request: Request, organization: NonNullable<Dashboard['organization']>): Promise<void> {
  // @ts-expect-error `settings` was not selected, so it is not in the result type.
  void organization.settings;
  // @ts-expect-error the dashboard query needs its `slug` variable.
  await request(OrganizationDashboardQuery);
  // @ts-expect-error `PUBLIC` is not a WorkspaceVisibility.
  await request(CreateWorkspaceMutation, { organizationId: organization.id, input: { name: 'x', visibility: 'PUBLIC' } });
  // @ts-expect-error `Me` takes no variables.
  await request(MeQuery, { slug: 'acme' });
}
