import { Field, Int, ObjectType } from 'type-graphql';
import { keyedLoader } from '../../database/loader-helpers';
import type { SqlQuery } from '../../database/tenant-transaction';

/** Why deleteOrganization is refused right now (the `reason` of its PRECONDITION_FAILED). */
export const DELETION_BLOCKERS = ['ACTIVE_ENVIRONMENTS', 'ACTIVE_SUBSCRIPTION'] as const;
export type DeletionBlocker = (typeof DELETION_BLOCKERS)[number];

/**
 * What deleting an organization would remove, and what blocks it now (SPEC §5 "Deletion impact"),
 * so a client can show the confirmation dialog before calling deleteOrganization. API keys do not
 * exist yet in this service: they count 0 until their issue adds its table here.
 */
@ObjectType('DeletionImpact')
export class DeletionImpact {
  @Field(() => Int) workspaces: number;
  @Field(() => Int) environments: number;
  @Field(() => Int) activeEnvironments: number;
  @Field(() => Int) members: number;
  @Field(() => Int) pendingInvitations: number;
  @Field(() => Int) apiKeys: number;
  @Field(() => Int) secrets: number;
  @Field(() => [String], { description: 'Reasons deletion is refused right now, e.g. ACTIVE_ENVIRONMENTS, ACTIVE_SUBSCRIPTION.' })
  blockers: DeletionBlocker[];
}

interface ImpactRow {
  organization_id: string;
  workspaces: number;
  environments: number;
  active_environments: number;
  members: number;
  pending_invitations: number;
  secrets: number;
  api_keys: number;
  active_subscription: boolean;
}

/**
 * The counts and blockers of several organizations in one statement (deleteOrganization reads
 * its own under the organization lock through the same query, so the dialog and the refusal agree).
 */
export async function deletionImpacts(query: SqlQuery, organizationIds: readonly string[]): Promise<Array<DeletionImpact & { organizationId: string }>> {
  const rows = await query<ImpactRow>(
    `SELECT o.id AS organization_id,
       (SELECT count(*)::int FROM workspaces w WHERE w.organization_id = o.id) AS workspaces,
       (SELECT count(*)::int FROM environments e WHERE e.organization_id = o.id) AS environments,
       (SELECT count(*)::int FROM environments e WHERE e.organization_id = o.id AND e.is_active) AS active_environments,
       (SELECT count(*)::int FROM memberships m WHERE m.organization_id = o.id) AS members,
       (SELECT count(*)::int FROM invitations i WHERE i.organization_id = o.id AND i.status = 'PENDING' AND i.expires_at > now()) AS pending_invitations,
       (SELECT count(*)::int FROM secrets x WHERE x.organization_id = o.id) AS secrets,
       (SELECT count(*)::int FROM api_keys k WHERE k.organization_id = o.id AND k.revoked_at IS NULL AND k.expires_at > now()) AS api_keys,
       -- A paid plan (a price above 0, or ENTERPRISE's custom null) that is ACTIVE or PAST_DUE; FREE,
       -- TRIALING, CANCELLING and EXPIRED do not block (SPEC §5).
       EXISTS (SELECT 1 FROM subscriptions s JOIN plans p ON p.key = s.plan_key
               WHERE s.organization_id = o.id AND s.status IN ('ACTIVE', 'PAST_DUE') AND coalesce(p.monthly_price_cents, 1) > 0) AS active_subscription
     FROM organizations o WHERE o.id = ANY($1::uuid[])`,
    [organizationIds],
  );
  return rows.map((r) => ({
    organizationId: r.organization_id,
    workspaces: r.workspaces,
    environments: r.environments,
    activeEnvironments: r.active_environments,
    members: r.members,
    pendingInvitations: r.pending_invitations,
    apiKeys: r.api_keys,
    secrets: r.secrets,
    blockers: [...(r.active_environments > 0 ? (['ACTIVE_ENVIRONMENTS'] as const) : []), ...(r.active_subscription ? (['ACTIVE_SUBSCRIPTION'] as const) : [])],
  }));
}

export function organizationDeletionLoaders(query: SqlQuery) {
  return {
    deletionImpactByOrganization: keyedLoader<string, DeletionImpact & { organizationId: string }>((ids) => deletionImpacts(query, ids), (r) => r.organizationId),
  };
}
