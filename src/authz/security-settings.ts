import { type AppError, IpNotAllowedError, MfaRequiredError, SessionExpiredError } from '../common/errors';
import { ipAllowed } from '../common/ip';
import type { Principal } from '../auth/principal';
import type { RefusalTest } from '../modules/organization/organization.loaders';
import { DEFAULT_SECURITY, type SecuritySettings } from '../modules/organization/organization.types';

/** The plan feature that switches the IP allowlist on (SPEC §2). */
export const IP_ALLOWLIST_FEATURE = 'ip_allowlist';

export interface SecurityCheckInput {
  principal: Principal;
  /** The client address as src/common/ip.ts derived it (X-Forwarded-For only from TRUSTED_PROXIES). */
  clientIp: string | null;
  settings: SecuritySettings;
  /** Whether the organization has the `ip_allowlist` feature (plan or override). */
  ipAllowlistEnabled: boolean;
  nowSeconds: number;
}

/**
 * The organization's security settings applied to one principal (SPEC §2), in the order of SPEC §6
 * (MFA_REQUIRED → SESSION_EXPIRED → IP_NOT_ALLOWED): null when the principal may act inside it.
 * MFA and the session timeout concern people (user tokens) only; the allowlist applies to every
 * principal that comes from the network (users and API keys), never to the service's own jobs.
 */
export function securityViolation({ principal, clientIp, settings, ipAllowlistEnabled, nowSeconds }: SecurityCheckInput): AppError | null {
  if (principal.kind === 'system' || principal.kind === 'anonymous') return null;
  if (principal.kind === 'user') {
    const { identity } = principal;
    if (settings.requireMfa && !identity.mfa) return new MfaRequiredError();
    const timeout = settings.sessionTimeoutMinutes;
    if (timeout > 0 && (identity.authenticatedAt === null || nowSeconds - identity.authenticatedAt > timeout * 60)) return new SessionExpiredError(timeout);
  }
  const allowlist = settings.ipAllowlist ?? [];
  if (ipAllowlistEnabled && allowlist.length > 0 && !(clientIp && ipAllowed(clientIp, allowlist))) return new IpNotAllowedError();
  return null;
}

/**
 * What of a principal an organization's security settings could refuse, as one light statement
 * tests it for a whole list (organizationsThatMayRefuse); null for those nothing refuses (the service's
 * own jobs, anonymous). The same rules as securityViolation, which decides the ones it flags.
 */
export function refusalTest(principal: Principal, nowSeconds: number): RefusalTest | null {
  if (principal.kind === 'system' || principal.kind === 'anonymous') return null;
  const user = principal.kind === 'user';
  const authenticatedAt = user ? principal.identity.authenticatedAt : null;
  return {
    user,
    mfa: user && principal.identity.mfa,
    ageSeconds: authenticatedAt === null ? null : nowSeconds - authenticatedAt,
    defaultTimeoutMinutes: DEFAULT_SECURITY.sessionTimeoutMinutes,
  };
}
