import { BadUserInputError, NotFoundError } from '../../common/errors';
import type { RequestContext } from '../../context';
import { METADATA_COLUMNS, ResolvedSecret, SECRET_KEY_PATTERN, SECRET_VALUE_MAX_BYTES, type SecretMetadata, type SecretRow, SecretScope, secretPurpose, toMetadata } from './secret.types';

/**
 * Secrets (SPEC §5): write-only. Callers passed the shield rule (`org.secrets.manage` on the
 * organization). Values are sealed with the organization's data key before they reach SQL and
 * never leave this class: not in a result, an error message or the audit trail.
 */
export class SecretService {
  constructor(private readonly ctx: RequestContext) {}

  private async scope(organizationId: string, workspaceId: string | null | undefined): Promise<{ organizationId: string; workspaceId: string | null }> {
    const organization = await this.ctx.access.organization(organizationId);
    if (workspaceId === null || workspaceId === undefined) return { organizationId: organization.id, workspaceId: null };
    const workspace = await this.ctx.access.visibleWorkspace(workspaceId);
    if (!workspace || workspace.organizationId !== organization.id) throw new NotFoundError('Workspace');
    return { organizationId: organization.id, workspaceId: workspace.id };
  }

  private static validKey(key: unknown): string {
    if (typeof key !== 'string' || !SECRET_KEY_PATTERN.test(key)) {
      throw new BadUserInputError('key', 'key must match ^[A-Z_][A-Z0-9_]{0,127}$ (uppercase letters, digits and _; at most 128 characters)');
    }
    return key;
  }

  async set(organizationId: string, workspaceId: string | null | undefined, key: string, value: string): Promise<SecretMetadata> {
    const scope = await this.scope(organizationId, workspaceId);
    const actingUserId = await this.ctx.access.actingUserId();
    SecretService.validKey(key);
    // The message names the field and the limit, never the value.
    if (typeof value !== 'string' || Buffer.byteLength(value, 'utf8') > SECRET_VALUE_MAX_BYTES) throw new BadUserInputError('value', 'value must be at most 64 KiB');

    return this.ctx.mutate(async () => {
      const query = this.ctx.tx.query;
      const sealed = await this.ctx.app.envelope.seal(query, scope.organizationId, secretPurpose(scope.workspaceId, key), value);
      const [row] = await query<SecretRow & { inserted: boolean }>(
        `INSERT INTO secrets (organization_id, workspace_id, key, sealed_value, updated_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (organization_id, coalesce(workspace_id, '00000000-0000-0000-0000-000000000000'::uuid), key)
         DO UPDATE SET sealed_value = EXCLUDED.sealed_value, updated_by = EXCLUDED.updated_by, version = secrets.version + 1, updated_at = now()
         RETURNING ${METADATA_COLUMNS}, (xmax = 0) AS inserted`,
        [scope.organizationId, scope.workspaceId, key, sealed, actingUserId],
      );
      const { inserted, ...metadata } = row!;
      await this.ctx.audit.record({
        organizationId: scope.organizationId,
        workspaceId: scope.workspaceId,
        action: 'secret.set',
        resourceType: 'secret',
        resourceId: key,
        resourceName: key,
        metadata: { key, scope: scope.workspaceId ? 'WORKSPACE' : 'ORGANIZATION', version: metadata.version, created: inserted },
      });
      return toMetadata(metadata);
    });
  }

  async delete(organizationId: string, workspaceId: string | null | undefined, key: string): Promise<boolean> {
    const scope = await this.scope(organizationId, workspaceId);
    SecretService.validKey(key);
    return this.ctx.mutate(async () => {
      const [row] = await this.ctx.tx.query<{ version: number }>(
        `DELETE FROM secrets WHERE organization_id = $1 AND workspace_id IS NOT DISTINCT FROM $2 AND key = $3 RETURNING version`,
        [scope.organizationId, scope.workspaceId, key],
      );
      if (!row) throw new NotFoundError('Secret');
      await this.ctx.audit.record({
        organizationId: scope.organizationId,
        workspaceId: scope.workspaceId,
        action: 'secret.deleted',
        resourceType: 'secret',
        resourceId: key,
        resourceName: key,
        metadata: { key, scope: scope.workspaceId ? 'WORKSPACE' : 'ORGANIZATION' },
      });
      return true;
    });
  }

  /**
   * `resolveSecrets` (SPEC §5): the organization's secrets overlaid by the workspace's own, opened
   * with the organization's data key, for an API key holding `secrets.read` (the shield rule
   * checked it: no role holds it, so a user is FORBIDDEN). Audited as `secrets.resolved` with the
   * keys and where each came from, never a value.
   */
  async resolve(workspaceId: string): Promise<ResolvedSecret[]> {
    const workspace = await this.ctx.access.workspace(workspaceId);
    return this.ctx.mutate(async () => {
      const query = this.ctx.tx.query;
      const rows = await query<{ workspace_id: string | null; key: string; sealed_value: Buffer | Uint8Array }>(
        `SELECT workspace_id, key, sealed_value FROM secrets WHERE organization_id = $1 AND (workspace_id IS NULL OR workspace_id = $2)`,
        [workspace.organizationId, workspace.id],
      );
      const byKey = new Map<string, (typeof rows)[number]>();
      // The workspace's own value wins over the organization's.
      for (const row of rows) if (row.workspace_id !== null || !byKey.has(row.key)) byKey.set(row.key, row);
      const resolved: ResolvedSecret[] = [];
      for (const row of [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
        const value = await this.ctx.app.envelope.open(query, workspace.organizationId, secretPurpose(row.workspace_id, row.key), Buffer.from(row.sealed_value));
        resolved.push(Object.assign(new ResolvedSecret(), { key: row.key, value, scope: row.workspace_id ? SecretScope.WORKSPACE : SecretScope.ORGANIZATION }));
      }
      await this.ctx.audit.record({
        organizationId: workspace.organizationId,
        workspaceId: workspace.id,
        action: 'secrets.resolved',
        resourceType: 'workspace',
        resourceId: workspace.id,
        resourceName: workspace.name,
        metadata: { keys: resolved.map((r) => r.key), scopes: Object.fromEntries(resolved.map((r) => [r.key, r.scope])) },
      });
      return resolved;
    });
  }
}
