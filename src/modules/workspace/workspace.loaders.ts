import type { DataSource } from 'typeorm';
import DataLoader from 'dataloader';
import { keyedLoader } from '../../database/loader-helpers';
import { hydrator } from '../../database/hydrate';
import type { SqlQuery } from '../../database/tenant-transaction';
import { Workspace, WorkspaceRole } from './workspace.entity';

/**
 * Which workspaces of an organization the viewer sees: `all` (owner, admin), `organization`
 * (its role holds workspace.view: ORGANIZATION ones plus granted ones), `grants` (granted only).
 */
export type WorkspaceVisibilityMode = 'all' | 'organization' | 'grants';

export interface WorkspacePageKey {
  organizationId: string;
  mode: WorkspaceVisibilityMode;
  /** first + 1: one look-ahead row tells whether more follow. */
  limit: number;
  after: [string, string] | null;
}

const pageGroup = (k: WorkspacePageKey) => `${k.mode}:${k.limit}:${k.after?.join(',') ?? ''}`;
const pageKey = (k: WorkspacePageKey) => `${k.organizationId}:${pageGroup(k)}`;

/** The visibility predicate over `w` with $5 = mode and $6 = the viewer's user id. */
const VISIBLE = `($5::text = 'all'
  OR ($5::text = 'organization' AND w.visibility = 'ORGANIZATION')
  OR EXISTS (SELECT 1 FROM workspace_members g WHERE g.organization_id = w.organization_id AND g.workspace_id = w.id AND g.user_id = $6::uuid))`;

/** Per-request loaders of workspaces; every query runs under row-level security. */
export function workspaceLoaders(query: SqlQuery, ds: DataSource, viewerUserId: () => string | null) {
  const toWorkspace = hydrator(ds, Workspace);
  return {
    workspaceById: keyedLoader<string, Workspace>(
      async (ids) => (await query(`SELECT * FROM workspaces WHERE id = ANY($1::uuid[])`, [ids])).map(toWorkspace),
      (w) => w.id,
    ),
    workspaceBySlug: keyedLoader<{ organizationId: string; slug: string }, Workspace>(
      async (keys) =>
        (
          await query(
            `SELECT w.* FROM workspaces w JOIN unnest($1::uuid[], $2::text[]) AS k(org, slug) ON w.organization_id = k.org AND lower(w.slug) = k.slug`,
            [keys.map((k) => k.organizationId), keys.map((k) => k.slug.toLowerCase())],
          )
        ).map(toWorkspace),
      (w) => ({ organizationId: w.organizationId, slug: w.slug }),
      (k) => `${k.organizationId}:${k.slug.toLowerCase()}`,
    ),
    /** The viewer's own workspace role, per workspace. */
    viewerWorkspaceRole: new DataLoader<{ organizationId: string; workspaceId: string }, WorkspaceRole | null, string>(
      async (refs) => {
        const userId = viewerUserId();
        if (!userId) return refs.map(() => null);
        const rows = await query<{ workspace_id: string; role: WorkspaceRole }>(
          `SELECT workspace_id, role FROM workspace_members
           WHERE organization_id = ANY($1::uuid[]) AND user_id = $2 AND workspace_id = ANY($3::uuid[])`,
          [[...new Set(refs.map((r) => r.organizationId))], userId, refs.map((r) => r.workspaceId)],
        );
        const byId = new Map(rows.map((r) => [r.workspace_id, r.role]));
        return refs.map((r) => byId.get(r.workspaceId) ?? null);
      },
      { cacheKeyFn: (r) => `${r.organizationId}:${r.workspaceId}` },
    ),
    /**
     * Pages of workspaces for many organizations in one statement per distinct (limit, after):
     * organizations → workspaces stays one query however many organizations are listed.
     */
    workspacePage: new DataLoader<WorkspacePageKey, Workspace[], string>(
      async (keys) => {
        const groups = new Map<string, WorkspacePageKey[]>();
        for (const key of keys) {
          const g = pageGroup(key);
          groups.set(g, [...(groups.get(g) ?? []), key]);
        }
        const results = new Map<string, Workspace[]>();
        for (const group of groups.values()) {
          const { limit, after, mode } = group[0]!;
          const rows = await query(
            `SELECT * FROM (
               SELECT w.*, row_number() OVER (PARTITION BY w.organization_id ORDER BY w.created_at, w.id) AS rn
               FROM workspaces w
               WHERE w.organization_id = ANY($1::uuid[]) AND ${VISIBLE}
                 AND ($2::timestamptz IS NULL OR (w.created_at, w.id) > ($2::timestamptz, $3::uuid))
             ) ranked WHERE rn <= $4 ORDER BY organization_id, rn`,
            [group.map((k) => k.organizationId), after?.[0] ?? null, after?.[1] ?? null, limit, mode, viewerUserId()],
          );
          for (const row of rows) {
            const w = toWorkspace(row);
            const k = pageKey({ ...group[0]!, organizationId: w.organizationId });
            results.set(k, [...(results.get(k) ?? []), w]);
          }
        }
        return keys.map((k) => results.get(pageKey(k)) ?? []);
      },
      { cacheKeyFn: pageKey },
    ),
    /** How many workspaces of each organization the viewer sees (one statement per mode). */
    visibleWorkspaceCount: new DataLoader<{ organizationId: string; mode: WorkspaceVisibilityMode }, number, string>(
      async (keys) => {
        const counts = new Map<string, number>();
        for (const mode of new Set(keys.map((k) => k.mode))) {
          const ids = keys.filter((k) => k.mode === mode).map((k) => k.organizationId);
          const rows = await query<{ organization_id: string; n: number }>(
            `SELECT w.organization_id, count(*)::int AS n FROM workspaces w
             WHERE w.organization_id = ANY($1::uuid[]) AND ${VISIBLE.replace(/\$5/g, '$2').replace(/\$6/g, '$3')}
             GROUP BY w.organization_id`,
            [ids, mode, viewerUserId()],
          );
          for (const r of rows) counts.set(`${r.organization_id}:${mode}`, r.n);
        }
        return keys.map((k) => counts.get(`${k.organizationId}:${k.mode}`) ?? 0);
      },
      { cacheKeyFn: (k) => `${k.organizationId}:${k.mode}` },
    ),
  };
}
