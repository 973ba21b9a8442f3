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
 * - `system`: the service itself (a background job, a webhook), always inside one organization.
 * API keys join this union with their own kind.
 */
export type Principal =
  | { kind: 'anonymous' }
  | { kind: 'user'; identity: TokenIdentity }
  | { kind: 'system'; organizationId: string; job: string };

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
