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

/** The user behind a `user` principal, as the database knows them at the start of the transaction. */
export interface Viewer {
  userId: string;
  email: string;
  name: string | null;
  emailVerified: boolean;
  /** True when this transaction saw the user for the first time. */
  created: boolean;
}
