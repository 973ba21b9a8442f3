import { Foundation1763900000000 } from './1763900000000-foundation';
import { Hardening1764600000000 } from './1764600000000-hardening';
import { RlsInitplan1764700000000 } from './1764700000000-rls-initplan';
import { LeanBootstrap1764800000000 } from './1764800000000-lean-bootstrap';
import { Invitations1764930000000 } from './1764930000000-invitations';
import { PlansFeatureFlags1764950000000 } from './1764950000000-plans-feature-flags';
import { QuotaNotifications1765000000000 } from './1765000000000-quota-notifications';
import { Subscriptions1765100000000 } from './1765100000000-subscriptions';
import { OrganizationDeletion1765200000000 } from './1765200000000-organization-deletion';
import { Secrets1765300000000 } from './1765300000000-secrets';
import { AuditApi1765400000000 } from './1765400000000-audit-api';
import { ApiKeys1765500000000 } from './1765500000000-api-keys';
import { RateLimits1765600000000 } from './1765600000000-rate-limits';
import { Notifications1765700000000 } from './1765700000000-notifications';
import { RateLimitLockTimeout1765800000000 } from './1765800000000-rate-limit-lock-timeout';
import { ProceduralRateLimit1765900000000 } from './1765900000000-procedural-rate-limit';
import { RateLimitLeases1766000000000 } from './1766000000000-rate-limit-leases';
import { OpenSession1766100000000 } from './1766100000000-open-session';
import { SessionSettings1766200000000 } from './1766200000000-session-settings';
import { SecurityColumns1766300000000 } from './1766300000000-security-columns';
import { MembershipScopeIndex1766400000000 } from './1766400000000-membership-scope-index';
import { MembershipScopes1766500000000 } from './1766500000000-membership-scopes';

/** Every migration, in order. Schema changes happen only here (synchronize is never on). */
export const MIGRATIONS = [
  Foundation1763900000000,
  Hardening1764600000000,
  RlsInitplan1764700000000,
  LeanBootstrap1764800000000,
  Invitations1764930000000,
  PlansFeatureFlags1764950000000,
  QuotaNotifications1765000000000,
  Subscriptions1765100000000,
  OrganizationDeletion1765200000000,
  Secrets1765300000000,
  AuditApi1765400000000,
  ApiKeys1765500000000,
  RateLimits1765600000000,
  Notifications1765700000000,
  RateLimitLockTimeout1765800000000,
  ProceduralRateLimit1765900000000,
  RateLimitLeases1766000000000,
  OpenSession1766100000000,
  SessionSettings1766200000000,
  SecurityColumns1766300000000,
  MembershipScopeIndex1766400000000,
  MembershipScopes1766500000000,
];
