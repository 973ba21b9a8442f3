import { ok, type TestApp } from '../../helpers/app';

export const CREATE_KEY = `mutation($org: ID!, $input: CreateApiKeyInput!) {
  createApiKey(organizationId: $org, input: $input) { secret apiKey { id name prefix scopes expiresAt createdAt lastUsedAt revokedAt createdBy { email } } }
}`;

export interface CreatedKey {
  id: string;
  secret: string;
  prefix: string;
  scopes: string[];
  expiresAt: string;
}

/** Creates a key as `as` (an email: a user token) or with `token` (a bearer: another key). */
export async function createKey(app: TestApp, organizationId: string, scopes: string[], by: { as?: string; token?: string }, extra: Record<string, unknown> = {}): Promise<CreatedKey> {
  const data = ok(await app.gql(CREATE_KEY, { org: organizationId, input: { name: 'ci', scopes, ...extra } }, by));
  const { secret, apiKey } = data.createApiKey;
  return { id: apiKey.id, secret, prefix: apiKey.prefix, scopes: apiKey.scopes, expiresAt: apiKey.expiresAt };
}

export const EXCHANGE = `mutation($key: String!) { exchangeApiKey(apiKey: $key) { accessToken tokenType expiresAt scopes } }`;

export async function exchange(app: TestApp, secret: string): Promise<string> {
  return ok(await app.gql(EXCHANGE, { key: secret })).exchangeApiKey.accessToken as string;
}
