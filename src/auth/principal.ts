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

export type Principal = { kind: 'anonymous' } | { kind: 'user'; identity: TokenIdentity };

export const ANONYMOUS: Principal = { kind: 'anonymous' };
