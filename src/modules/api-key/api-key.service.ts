import { serviceKeyring } from '../../auth/service-tokens';
import { isPermission, type Permission } from '../../authz/permissions';
import { BadUserInputError, NotFoundError, PreconditionFailedError, UnauthenticatedError } from '../../common/errors';
import { intInRange, optionalText, requiredName } from '../../common/validation';
import type { Principal } from '../../auth/principal';
import { RequestContext } from '../../context';
import { DEFAULT_SECURITY } from '../organization/organization.types';
import { QuotaChecker } from '../quota/quota.checker';
import { QuotaResource } from '../quota/quota.types';
import { AccessToken, API_KEY_COLUMNS, type ApiKey, type CreateApiKeyInput, type CreatedApiKey, hashApiKey, newApiKeySecret, toApiKey } from './api-key.types';
import { recordApiKeyUse } from './api-key.usage';

/** Scopes: permission codes, at least one, no more than the catalogue holds. */
function validScopes(scopes: unknown): Permission[] {
  if (!Array.isArray(scopes) || scopes.length === 0) throw new BadUserInputError('scopes', 'scopes must name at least one permission');
  const unknown = scopes.filter((s) => typeof s !== 'string' || !isPermission(s));
  if (unknown.length > 0) throw new BadUserInputError('scopes', `Unknown permission in scopes (see permissionCatalog)`);
  return [...new Set(scopes as Permission[])].sort();
}

/**
 * API keys (SPEC §2). Callers passed the shield rule (`org.api_keys.manage` in the organization, or
 * on the key's organization for `revoke`). The secret exists only in the `CreatedApiKey` answer:
 * the table keeps its SHA-256, the audit trail its name and scopes.
 */
export class ApiKeyService {
  constructor(private readonly ctx: RequestContext) {}

  /**
   * Scopes ⊆ what the creator may grant (a key: its own scopes; SPEC §4 for the machine-only ones),
   * else FORBIDDEN; lifetime ≤ the organization's `apiKeyMaxLifetimeDays` (BAD_USER_INPUT beyond;
   * omitted: that maximum); one more key than the plan's `maxApiKeys` is QUOTA_EXCEEDED.
   */
  async create(organizationId: string, input: CreateApiKeyInput): Promise<CreatedApiKey> {
    const organization = await this.ctx.access.organization(organizationId);
    const scopes = validScopes(input.scopes);
    // SPEC §6: FORBIDDEN (escalation) before the rest of the input.
    await this.ctx.access.assertMayGrantScopes(organization.id, scopes);
    const name = requiredName(input.name);
    const description = optionalText(input.description, 'description');
    const maxDays = { ...DEFAULT_SECURITY, ...organization.security }.apiKeyMaxLifetimeDays;
    const days = input.expiresInDays === undefined || input.expiresInDays === null ? maxDays : intInRange(input.expiresInDays, 'expiresInDays', 1, maxDays);
    const creator = await this.ctx.access.actingUserId();
    const creatorKey = (await this.ctx.access.apiKey())?.id ?? null;

    return this.ctx.mutate(async () => {
      // Under the organization lock: N concurrent creates against room for k, exactly k pass.
      await new QuotaChecker(this.ctx).admit(organization.id, { [QuotaResource.API_KEYS]: 1 });
      const { secret, prefix, hash } = newApiKeySecret();
      const [row] = await this.ctx.tx.query<ApiKey>(
        `INSERT INTO api_keys (organization_id, name, description, prefix, secret_hash, scopes, created_by, created_by_api_key, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(days => $9::int))
         RETURNING ${API_KEY_COLUMNS}`,
        [organization.id, name, description, prefix, hash, scopes, creator, creatorKey, days],
      );
      const apiKey = toApiKey(row!);
      await this.ctx.audit.record({
        organizationId: organization.id,
        action: 'api_key.created',
        resourceType: 'api_key',
        resourceId: apiKey.id,
        resourceName: apiKey.name,
        metadata: { prefix, scopes, expiresAt: apiKey.expiresAt.toISOString(), expiresInDays: days },
      });
      return { apiKey, secret };
    });
  }

  /** Revokes at once (the next request with the key, or a token exchanged from it, is UNAUTHENTICATED); a revoked key stays revoked. */
  async revoke(id: string): Promise<ApiKey> {
    const found = await this.ctx.access.apiKeyById(id);
    return this.ctx.mutate(async () => {
      const [row] = await this.ctx.tx.query<ApiKey>(
        `UPDATE api_keys SET revoked_at = now() WHERE organization_id = $1 AND id = $2 AND revoked_at IS NULL RETURNING ${API_KEY_COLUMNS}`,
        [found.organizationId, found.id],
      );
      if (!row) {
        const [current] = await this.ctx.tx.query(`SELECT 1 FROM api_keys WHERE organization_id = $1 AND id = $2`, [found.organizationId, found.id]);
        if (!current) throw new NotFoundError('ApiKey');
        throw new PreconditionFailedError('API_KEY_REVOKED', 'This API key is already revoked');
      }
      const apiKey = toApiKey(row);
      await this.ctx.audit.record({
        organizationId: apiKey.organizationId,
        action: 'api_key.revoked',
        resourceType: 'api_key',
        resourceId: apiKey.id,
        resourceName: apiKey.name,
        metadata: { prefix: apiKey.prefix },
      });
      return apiKey;
    });
  }

  /**
   * Trades a key for a 15-minute access token signed by the service (SPEC §2). The exchange runs
   * as the key itself — a unit of work of the `apiKey` principal, authenticated by the same lookup
   * as every request (revoked, expired, or of a deleted or suspended organization:
   * UNAUTHENTICATED, HTTP 401) — and meets its organization's IP allowlist (IP_NOT_ALLOWED), so no
   * token is handed out where the key itself would be refused. The token carries the key id,
   * organization and scopes; each request with it authenticates the key again.
   */
  async exchange(secret: string): Promise<AccessToken> {
    const principal: Principal = { kind: 'apiKey', credential: { via: 'secret', hash: hashApiKey(typeof secret === 'string' ? secret : '').toString('hex') } };
    const asKey = new RequestContext(this.ctx.app, principal, { ...this.ctx.origin, requestId: this.ctx.requestId });
    try {
      const key = await asKey.access.apiKey();
      if (!key) throw new UnauthenticatedError('Invalid, revoked or expired API key', 401);
      await asKey.access.inside(key.organizationId);
      const keyring = serviceKeyring(this.ctx.app.db, this.ctx.app.envelope);
      // A write when the first signing key is made or the current one rotated by age.
      const { token, expiresAt } = await asKey.mutate(() => keyring.sign(asKey.tx.query, key));
      await asKey.tx.finish();
      recordApiKeyUse(this.ctx.app.db, key, this.ctx.app.logger);
      return Object.assign(new AccessToken(), { accessToken: token, tokenType: 'Bearer', expiresAt, scopes: [...key.scopes] });
    } finally {
      await asKey.tx.finish(false).catch(() => undefined);
    }
  }
}
