import { ipAllowed } from '../../common/ip';
import type { Principal } from '../../auth/principal';
import { BadUserInputError } from '../../common/errors';
import {
  cidrList,
  intInRange,
  jsonObject,
  optionalColor,
  optionalEmail,
  optionalText,
  requiredName,
  timezone,
} from '../../common/validation';
import type { BannerInput, BrandingInput, OrganizationSettingsInput, SecuritySettingsInput } from './organization.inputs';
import type { Banner, Branding, OrganizationSettings, SecuritySettings } from './organization.types';

/** Applies a settings patch (omitted: unchanged; null: back to the default) and validates the result. */
export function mergeSettings(current: OrganizationSettings, patch: OrganizationSettingsInput, defaults: OrganizationSettings): OrganizationSettings {
  const next = { ...current };
  if (patch.timezone !== undefined) next.timezone = patch.timezone === null ? defaults.timezone : timezone(patch.timezone, 'settings.timezone');
  if (patch.defaultBranch !== undefined) {
    next.defaultBranch = patch.defaultBranch === null ? defaults.defaultBranch : requiredName(patch.defaultBranch, 'settings.defaultBranch', 255);
    if (!/^[A-Za-z0-9._/-]+$/.test(next.defaultBranch)) throw new BadUserInputError('settings.defaultBranch', 'settings.defaultBranch must be a valid branch name');
  }
  if (patch.defaultStorageProvider !== undefined) next.defaultStorageProvider = patch.defaultStorageProvider ?? null;
  if (patch.notificationEmail !== undefined) next.notificationEmail = optionalEmail(patch.notificationEmail, 'settings.notificationEmail');
  if (patch.extra !== undefined) next.extra = patch.extra === null ? {} : jsonObject(patch.extra, 'settings.extra');
  return next;
}

/** Who changes the settings: the lock-out guards keep them inside what they set. */
export interface SecurityEditor {
  clientIp: string | null;
  principal: Principal;
  nowSeconds: number;
}

export function mergeSecurity(current: SecuritySettings, patch: SecuritySettingsInput, { clientIp, principal, nowSeconds }: SecurityEditor): SecuritySettings {
  const next = { ...current };
  // MFA and the session timeout concern user tokens only (SPEC §2); for them, nobody locks themselves out either.
  const identity = principal.kind === 'user' ? principal.identity : null;
  if (patch.requireMfa !== undefined && patch.requireMfa !== null) {
    if (patch.requireMfa && identity && !identity.mfa) {
      throw new BadUserInputError('security.requireMfa', 'Sign in with multi-factor authentication before requiring it, or you would lock yourself out');
    }
    next.requireMfa = patch.requireMfa;
  }
  if (patch.sessionTimeoutMinutes !== undefined && patch.sessionTimeoutMinutes !== null) {
    next.sessionTimeoutMinutes = intInRange(patch.sessionTimeoutMinutes, 'security.sessionTimeoutMinutes', 5, 43200);
    if (identity && (identity.authenticatedAt === null || nowSeconds - identity.authenticatedAt > next.sessionTimeoutMinutes * 60)) {
      throw new BadUserInputError('security.sessionTimeoutMinutes', 'Your own session is older than this timeout: sign in again first, or you would lock yourself out');
    }
  }
  if (patch.apiKeyMaxLifetimeDays !== undefined && patch.apiKeyMaxLifetimeDays !== null) {
    next.apiKeyMaxLifetimeDays = intInRange(patch.apiKeyMaxLifetimeDays, 'security.apiKeyMaxLifetimeDays', 1, 3650);
  }
  if (patch.allowUserKeyOverride !== undefined && patch.allowUserKeyOverride !== null) next.allowUserKeyOverride = patch.allowUserKeyOverride;
  if (patch.ipAllowlist !== undefined) {
    const list = cidrList(patch.ipAllowlist ?? [], 'ipAllowlist');
    // Nobody locks themselves out: the caller's own address must stay allowed.
    if (list.length > 0 && !(clientIp && ipAllowed(clientIp, list))) {
      throw new BadUserInputError('ipAllowlist', `ipAllowlist must include your current address (${clientIp ?? 'unknown'})`);
    }
    next.ipAllowlist = list;
  }
  return next;
}

export function mergeBranding(current: Branding, patch: BrandingInput): Branding {
  const next = { ...current };
  for (const field of ['primaryColor', 'secondaryColor', 'accentColor'] as const) {
    if (patch[field] !== undefined) next[field] = optionalColor(patch[field], `branding.${field}`);
  }
  if (patch.fontFamily !== undefined) next.fontFamily = optionalText(patch.fontFamily, 'branding.fontFamily', 100);
  return next;
}

export function validBanner(banner: BannerInput | null): Banner | null {
  if (banner === null) return null;
  return { message: requiredName(banner.message, 'banner.message', 500), variant: banner.variant, dismissible: banner.dismissible };
}
