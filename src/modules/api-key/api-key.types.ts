import { createHash, randomBytes } from 'node:crypto';
import { Field, ID, InputType, Int, ObjectType } from 'type-graphql';

/** The visible start of every key: `tsk_` ("tenant service key") then 43 base64url characters (32 random bytes, 256 bits). */
export const API_KEY_PREFIX = 'tsk_';
const SECRET_PATTERN = /^tsk_[A-Za-z0-9_-]{43}$/;
/** How many characters of a key are kept and shown (`prefix`): the marker and 8 random characters. */
const SHOWN = API_KEY_PREFIX.length + 8;

/** A bearer that has the form of an API key (a JWT has dots, a key never does). */
export const looksLikeApiKey = (bearer: string): boolean => bearer.startsWith(API_KEY_PREFIX) && !bearer.includes('.');

/** A new secret: 32 random bytes (256 bits), base64url, behind the prefix. */
export function newApiKeySecret(): { secret: string; prefix: string; hash: Buffer } {
  const secret = `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  return { secret, prefix: secret.slice(0, SHOWN), hash: hashApiKey(secret) };
}

/**
 * SHA-256 of the key: the only form stored or looked up. A key has 256 bits of randomness, so a
 * fast hash is enough (nothing to brute-force); a malformed one hashes to nothing that exists.
 */
export function hashApiKey(secret: string): Buffer {
  return createHash('sha256').update(SECRET_PATTERN.test(secret) ? secret : `invalid:${secret}`).digest();
}

@ObjectType('ApiKey')
export class ApiKey {
  @Field(() => ID) id: string;
  @Field() name: string;
  @Field(() => String, { nullable: true }) description: string | null;
  @Field({ description: 'The first characters of the key, safe to show.' }) prefix: string;
  @Field(() => [String]) scopes: string[];
  @Field() createdAt: Date;
  @Field() expiresAt: Date;
  @Field(() => Date, { nullable: true }) lastUsedAt: Date | null;
  @Field(() => Date, { nullable: true }) revokedAt: Date | null;
  organizationId: string;
  /** Resolved to `createdBy: User` (null when a key created it). */
  createdById: string | null;
}

@ObjectType('CreatedApiKey', { description: 'The secret is returned once, here, and never again.' })
export class CreatedApiKey {
  @Field(() => ApiKey) apiKey: ApiKey;
  @Field() secret: string;
}

@InputType('CreateApiKeyInput')
export class CreateApiKeyInput {
  @Field() name: string;
  @Field(() => String, { nullable: true }) description?: string | null;
  @Field(() => [String]) scopes: string[];
  @Field(() => Int, { nullable: true }) expiresInDays?: number | null;
}

@ObjectType('AccessToken')
export class AccessToken {
  @Field() accessToken: string;
  @Field() tokenType: string;
  @Field() expiresAt: Date;
  @Field(() => [String]) scopes: string[];
}

/** Columns of an API key as the API shows it (never the hash). */
export const API_KEY_COLUMNS = `organization_id AS "organizationId", id, name, description, prefix, scopes, created_at AS "createdAt",
  created_by AS "createdById", expires_at AS "expiresAt", last_used_at AS "lastUsedAt", revoked_at AS "revokedAt"`;

export const toApiKey = (row: Omit<ApiKey, never>): ApiKey => Object.assign(new ApiKey(), row);
