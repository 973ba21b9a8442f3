import { createHash } from 'node:crypto';

/** What a verified token says about its bearer. */
export interface TokenIdentity {
  subject: string;
  email: string;
  emailVerified: boolean;
  name: string | null;
  picture: string | null;
  /** amr contains mfa, otp, hwk or swk. */
  mfa: boolean;
  /** auth_time, else iat (seconds since epoch). */
  authenticatedAt: number | null;
}

/**
 * Who a unit of work acts for — the one principal type of the service:
 * - `anonymous`: a request without a bearer (only public operations pass the rules);
 * - `user`: a person behind a verified token, provisioned just in time;
 * - `system`: the service itself (a background job, a webhook), always inside one organization;
 * - `apiKey`: a machine with an API key of one organization, presented as the raw key (`secret`:
 *   only its SHA-256 travels further) or as an access token exchanged for it (`token`: the key id
 *   of its `sub`). Either way the key is authenticated again on every request, when the
 *   transaction opens (src/database/tenant-transaction.ts), and resolved to an `ApiKeyIdentity`.
 */
export type Principal =
  | { kind: 'anonymous' }
  | { kind: 'user'; identity: TokenIdentity }
  | { kind: 'system'; organizationId: string; job: string }
  | { kind: 'apiKey'; credential: ApiKeyCredential };

/** How an API key was presented. */
export type ApiKeyCredential = { via: 'secret'; hash: string } | { via: 'token'; keyId: string };

/** An authenticated API key: it acts only inside its organization, with exactly its scopes (permission codes). */
export interface ApiKeyIdentity {
  id: string;
  name: string;
  organizationId: string;
  scopes: readonly string[];
  via: ApiKeyCredential['via'];
}

export const ANONYMOUS: Principal = { kind: 'anonymous' };

export const systemPrincipal = (organizationId: string, job: string): Principal => ({ kind: 'system', organizationId, job });

/**
 * Whom the rate limits count a request for (README "Rate limits"), null when exempt:
 * - `key`: the principal's bucket; inside an organization the bucket is `<key>@<organization id>`;
 * - `subject`: a user's token subject, whose memberships decide which organizations a request is
 *   attributed to (the database resolves them; the user id is not known before the transaction opens);
 * - `organizationId`: the one organization a principal acts in, whatever the request names.
 * The service's own jobs are not limited; an anonymous request reaches public operations only
 * (unguessable-token lookups and `_service`), which SPEC §8 does not limit.
 */
export interface RateLimitIdentity {
  key: string;
  subject: string | null;
  organizationId: string | null;
  /** An API key as presented: the database resolves it to its organization and to one bucket per key. */
  apiKey: ApiKeyCredential | null;
}

export function rateLimitIdentity(principal: Principal): RateLimitIdentity | null {
  switch (principal.kind) {
    case 'user':
      return { key: `user:${bucketName(principal.identity.subject)}`, subject: principal.identity.subject, organizationId: null, apiKey: null };
    case 'apiKey': {
      // Until the database resolves the key (`apikey:<id>`), a bucket of its own: an unknown key never shares one.
      const { credential } = principal;
      const presented = credential.via === 'secret' ? `hash:${credential.hash}` : `id:${credential.keyId}`;
      return { key: `apikey:${presented}`, subject: null, organizationId: null, apiKey: credential };
    }
    case 'system':
    case 'anonymous':
      return null;
  }
}

/** An identifier as a bucket name: as it is when short, else its SHA-256 (bucket keys stay short whatever an issuer's `sub` looks like). */
function bucketName(id: string): string {
  return id.length <= 128 ? id : `sha256:${createHash('sha256').update(id).digest('hex')}`;
}

/** The user behind a `user` principal, as the database knows them at the start of the transaction. */
export interface Viewer {
  userId: string;
  email: string;
  name: string | null;
  emailVerified: boolean;
  /** True when this transaction saw the user for the first time. */
  created: boolean;
}
