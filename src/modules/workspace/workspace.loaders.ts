import type { DataSource } from 'typeorm';
import DataLoader from 'dataloader';
import { groupedLoader, keyedLoader, keyRows, oneOf, ownedCountLoader, ownedPageLoader, PairMap } from '../../database/loader-helpers';
import { keysetAfter } from '../../common/pagination';
import { hydrator } from '../../database/hydrate';
import { ListColumns } from '../../database/projection';
import type { SqlQuery } from '../../database/tenant-transaction';
import { environmentsAlong, environmentsJoined, WORKSPACE_REF, type EnvironmentColumns, type EnvironmentPrimer, type WorkspaceRef } from '../environment/environment.loaders';
import { Workspace, WorkspaceRole } from './workspace.entity';

/**
 * Which workspaces of an organization the viewer sees: `all` (owner, admin), `organization`
 * (its role holds workspace.view: ORGANIZATION ones plus granted ones), `grants` (granted only).
 */
export type WorkspaceVisibilityMode = 'all' | 'organization' | 'grants';

/** The viewer's own grant joined to `w` as `vg` ($u = the viewer's user id; none for other principals). */
const viewerGrant = (u: number) =>
  `LEFT JOIN workspace_members vg ON vg.organization_id = w.organization_id AND vg.workspace_id = w.id AND vg.user_id = $${u}::uuid`;
/** Whether the viewer sees `w` ($m = mode), over `viewerGrant`. */
const visible = (m: number) => `($${m}::text = 'all' OR ($${m}::text = 'organization' AND w.visibility = 'ORGANIZATION') OR vg.role IS NOT NULL)`;

/** What pages of workspaces read: the lean columns serve these fields (their resolvers read only the ids and the visibility). */
export const WORKSPACE_LIST_COLUMNS = new ListColumns('organization_id, id, name, slug, visibility, is_default, created_at', '*', [
  'id',
  'name',
  'slug',
  'visibility',
  'isDefault',
  'createdAt',
  'environments',
  'environment',
  'organization',
  'viewerPermissions',
  'members',
  'secrets',
]);

/** What narrows a page of workspaces, and which environments come along with it (environmentsAlong; null: none). */
export interface WorkspacePageFilter {
  mode: WorkspaceVisibilityMode;
  environments: EnvironmentColumns | null;
}

export interface WorkspaceGrantRow {
  organizationId: string;
  workspaceId: string;
  userId: string;
  role: WorkspaceRole;
  grantedAt: Date;
}

/** Per-request loaders of workspaces; every query runs under row-level security. */
export function workspaceLoaders(query: SqlQuery, ds: DataSource, viewerUserId: () => Promise<string | null>, primeEnvironments: EnvironmentPrimer) {
  const toWorkspace = hydrator(ds, Workspace);
  /** The viewer's own workspace role, per workspace (primed by the page loader, which reads it with the page). */
  const viewerWorkspaceRole = new DataLoader<WorkspaceRef, WorkspaceRole | null, unknown>(
    async (refs) => {
      const userId = await viewerUserId();
      if (!userId) return refs.map(() => null);
      const rows = await query<{ workspace_id: string; role: WorkspaceRole }>(
        `SELECT workspace_id, role FROM workspace_members
         WHERE organization_id = ANY($1::uuid[]) AND user_id = $2 AND workspace_id = ANY($3::uuid[])`,
        [[...new Set(refs.map((r) => r.organizationId))], userId, refs.map((r) => r.workspaceId)],
      );
      const byId = new Map(rows.map((r) => [r.workspace_id, r.role]));
      return refs.map((r) => byId.get(r.workspaceId) ?? null);
    },
    { cacheMap: new PairMap(WORKSPACE_REF) },
  );
  const pageOf = (columns: string) =>
    ownedPageLoader<Workspace, WorkspacePageFilter>(
      async (organizationIds, limit, after, { mode, environments }) => {
        // Each organization's page read by its own index scan, which stops at the page's size (a lateral
        // join per organization), instead of ranking every visible workspace of all of them with a
        // window function: a scan of the whole table, each row tested against the scope of the policy
        // (Q3, 50 organizations of 200 in scope: 1 200 rows read for 300, 2.0 → 1.4 ms). One
        // organization as a scalar parameter, for its generic plan (keyRows).
        const owner = keyRows('owner', 'owner_id', 1, organizationIds);
        // The environments come along in both cases, in two forms. One organization's page reads them
        // correlated, per workspace (environmentsAlong). The pages of several organizations read them
        // with one join over the whole page (environmentsJoined): correlated, each of their 300
        // workspaces (Q3) would cost PostgreSQL a rescan that prepares the policy's scope array again
        // (~20 µs each with 200 organizations in scope), more than the hashed statement of their own a
        // round trip later; joined, the scope is prepared once and that statement, its round trip and
        // its 300 workspace ids are saved (pgbench, page and environments: 4.9–6.9 → 3.9–5.9 ms).
        // For one organization the correlated form is the cheaper (0.49 against 0.60 ms).
        // The viewer's grants come with the page, except for an owner or admin (mode `all`): they see
        // every workspace, and a grant adds nothing to their permissions (Access.workspacePermissions
        // does not read it), so the page does not join workspace_members and its policy at all.
        const grants = mode !== 'all';
        const select = columns === '*' ? 'ranked.*' : `${columns}${grants ? ', viewer_role' : ''}`;
        const pages = `${owner.sql} CROSS JOIN LATERAL (
             SELECT w.*${grants ? ', vg.role AS viewer_role' : ''}
             FROM workspaces w ${grants ? viewerGrant(6) : ''}
             WHERE w.organization_id = owner.owner_id AND ${grants ? visible(5) : 'true'} AND ${keysetAfter('w.created_at', 'w.id', 'asc', 2)}
             ORDER BY w.created_at, w.id LIMIT $4
           ) ranked`;
        const sql = !environments
          ? `SELECT ${select} FROM ${pages} ORDER BY ranked.organization_id, ranked.created_at, ranked.id`
          : organizationIds.length === 1
            ? `SELECT ${select}, ${environmentsAlong(ds, environments, 'ranked')} FROM ${pages} ORDER BY ranked.organization_id, ranked.created_at, ranked.id`
            : `WITH page AS MATERIALIZED (SELECT ${select} FROM ${pages})
               SELECT page.*, along.environments_along FROM page ${environmentsJoined(ds, environments, 'page', oneOf('x.organization_id', 1, organizationIds, 'uuid', 'index').sql)}
               ORDER BY page.organization_id, page.created_at, page.id`;
        const rows = await query<Record<string, unknown> & { viewer_role?: WorkspaceRole | null; environments_along?: unknown }>(sql, [
          owner.param,
          after?.[0] ?? null,
          after?.[1] ?? null,
          limit,
          ...(grants ? [mode, await viewerUserId()] : []),
        ]);
        return rows.map((row) => {
          const w = toWorkspace(row);
          const ref = { organizationId: w.organizationId, workspaceId: w.id };
          // The viewer's grant came with the page: the permission rules of its fields need no statement of their own.
          if (grants) viewerWorkspaceRole.prime(ref, row.viewer_role ?? null);
          if (environments) primeEnvironments(environments, ref, row.environments_along);
          return w;
        });
      },
      (w) => w.organizationId,
    );
  return {
    viewerWorkspaceRole,
    workspaceById: keyedLoader<string, Workspace>(
      async (ids) => {
        const k = oneOf('id', 1, ids);
        return (await query(`SELECT * FROM workspaces WHERE ${k.sql}`, [k.param])).map(toWorkspace);
      },
      (w) => w.id,
    ),
    workspaceBySlug: keyedLoader<{ organizationId: string; slug: string }, Workspace>(
      async (keys) =>
        (
          await query(
            `SELECT w.* FROM workspaces w JOIN unnest($1::uuid[], $2::text[]) AS k(org, slug) ON w.organization_id = k.org AND w.slug = k.slug`,
            [keys.map((k) => k.organizationId), keys.map((k) => k.slug.toLowerCase())],
          )
        ).map(toWorkspace),
      (w) => ({ organizationId: w.organizationId, slug: w.slug }),
      (k) => `${k.organizationId}:${k.slug.toLowerCase()}`,
    ),
    /** Pages of workspaces for many organizations with every column, one statement per distinct (limit, cursor, visibility). */
    workspacePage: pageOf(WORKSPACE_LIST_COLUMNS.full),
    /** The same with only WORKSPACE_LIST_COLUMNS.lean: for a page whose selection they serve (see ListColumns). */
    leanWorkspacePage: pageOf(WORKSPACE_LIST_COLUMNS.lean),
    /** How many workspaces of each organization the viewer sees (one statement per mode). */
    visibleWorkspaceCount: ownedCountLoader<WorkspaceVisibilityMode>(async (organizationIds, mode) => {
      const owners = oneOf('w.organization_id', 1, organizationIds);
      return query<{ owner: string; n: number }>(
        `SELECT w.organization_id AS owner, count(*)::int AS n FROM workspaces w ${viewerGrant(3)}
         WHERE ${owners.sql} AND ${visible(2)} GROUP BY w.organization_id`,
        [owners.param, mode, await viewerUserId()],
      );
    }),
    /** The grants of many workspaces in one statement, oldest first. */
    grantsByWorkspace: groupedLoader<WorkspaceRef, WorkspaceGrantRow>(
      async (refs) =>
        (
          await query<{ organization_id: string; workspace_id: string; user_id: string; role: WorkspaceRole; granted_at: Date | string }>(
            `SELECT organization_id, workspace_id, user_id, role, granted_at FROM workspace_members
             WHERE organization_id = ANY($1::uuid[]) AND workspace_id = ANY($2::uuid[]) ORDER BY granted_at, user_id`,
            [[...new Set(refs.map((r) => r.organizationId))], refs.map((r) => r.workspaceId)],
          )
        ).map((r) => ({ organizationId: r.organization_id, workspaceId: r.workspace_id, userId: r.user_id, role: r.role, grantedAt: new Date(r.granted_at) })),
      (g) => g,
      WORKSPACE_REF,
    ),
  };
}
