import { BadUserInputError } from '../../common/errors';
import type { RequestContext } from '../../context';
import { BUILT_IN_TYPES, builtInDefault, NOTIFICATION_TYPE_PATTERN, NotificationChannel, type NotificationPreference, type NotificationSettings } from './notification.types';

/** A notification type (SPEC §5 pattern), else BAD_USER_INPUT on `field`. */
export function validType(type: unknown, field = 'type'): string {
  if (typeof type !== 'string' || !NOTIFICATION_TYPE_PATTERN.test(type)) {
    throw new BadUserInputError(field, 'type must match ^[a-z][a-z0-9_.]{1,63}$ (lowercase letters, digits, _ and .; 2 to 64 characters)');
  }
  return type;
}

const preference = (type: string, channel: string): NotificationPreference => ({ type, channel: channel as NotificationChannel });
const byType = (a: NotificationPreference, b: NotificationPreference) => a.type.localeCompare(b.type);

/**
 * The preference model (SPEC §5): built-in default → the organization's default per type →
 * the member's override per type. Permissions come from the shield rules (`org.settings.update`
 * for organization defaults; any member for their own settings); each change is audited.
 */
export class NotificationSettingsService {
  constructor(private readonly ctx: RequestContext) {}

  /**
   * Changes of one setting are serialised (a transaction-scoped advisory lock, the only lock these
   * mutations take), so that a first insert racing another reads what it replaces and the audit
   * `oldValues` are true.
   */
  private async serialise(key: string): Promise<void> {
    await this.ctx.tx.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [key]);
  }

  /** The organization's default channel of every built-in type and of every type it set a default for. */
  async organizationDefaults(organizationId: string): Promise<NotificationPreference[]> {
    const rows = await this.ctx.tx.query<{ type: string; channel: string }>(`SELECT type, channel FROM notification_defaults WHERE organization_id = $1`, [organizationId]);
    const stored = new Map(rows.map((r) => [r.type, r.channel]));
    const types = new Set<string>([...BUILT_IN_TYPES, ...stored.keys()]);
    return [...types].map((type) => preference(type, stored.get(type) ?? builtInDefault(type))).sort(byType);
  }

  async setOrganizationDefault(organizationId: string, type: string, channel: NotificationChannel): Promise<NotificationPreference[]> {
    const organization = await this.ctx.access.organization(organizationId);
    validType(type);
    return this.ctx.mutate(async () => {
      await this.serialise(`notification-default:${organization.id}:${type}`);
      const [before] = await this.ctx.tx.query<{ channel: string }>(
        `SELECT channel FROM notification_defaults WHERE organization_id = $1 AND type = $2 FOR UPDATE`,
        [organization.id, type],
      );
      await this.ctx.tx.query(
        `INSERT INTO notification_defaults (organization_id, type, channel) VALUES ($1, $2, $3)
         ON CONFLICT (organization_id, type) DO UPDATE SET channel = EXCLUDED.channel, updated_at = now()`,
        [organization.id, type, channel],
      );
      const old = before?.channel ?? builtInDefault(type);
      await this.ctx.audit.record({
        organizationId: organization.id,
        action: 'notification.default_changed',
        resourceType: 'notification_default',
        resourceId: type,
        resourceName: type,
        changes: { changedFields: old === channel ? [] : ['channel'], oldValues: old === channel ? {} : { channel: old }, newValues: old === channel ? {} : { channel } },
      });
      return this.organizationDefaults(organization.id);
    });
  }

  /** The viewer's effective settings in an organization: every type with a default or an override, and the digest choice. */
  async effective(organizationId: string): Promise<NotificationSettings> {
    const organization = await this.ctx.access.organization(organizationId);
    const viewer = await this.ctx.access.requireViewer();
    const [defaults, overrides, settings] = await Promise.all([
      this.organizationDefaults(organization.id),
      this.ctx.tx.query<{ type: string; channel: string }>(`SELECT type, channel FROM notification_preferences WHERE organization_id = $1 AND user_id = $2`, [
        organization.id,
        viewer.userId,
      ]),
      this.ctx.tx.query<{ email_digest: boolean }>(`SELECT email_digest FROM notification_member_settings WHERE organization_id = $1 AND user_id = $2`, [
        organization.id,
        viewer.userId,
      ]),
    ]);
    const effective = new Map(defaults.map((d) => [d.type, d.channel as string]));
    for (const o of overrides) effective.set(o.type, o.channel);
    return {
      preferences: [...effective].map(([type, channel]) => preference(type, channel)).sort(byType),
      emailDigest: settings[0]?.email_digest ?? false,
    };
  }

  /** The viewer's override for a type; `channel: null` removes it (the organization's default applies again). */
  async setPreference(organizationId: string, type: string, channel: NotificationChannel | null | undefined): Promise<NotificationSettings> {
    const organization = await this.ctx.access.organization(organizationId);
    const viewer = await this.ctx.access.requireViewer();
    validType(type);
    await this.ctx.mutate(async () => {
      await this.serialise(`notification-settings:${organization.id}:${viewer.userId}`);
      const [before] = await this.ctx.tx.query<{ channel: string }>(
        channel ? `SELECT channel FROM notification_preferences WHERE organization_id = $1 AND user_id = $2 AND type = $3 FOR UPDATE`
          : `DELETE FROM notification_preferences WHERE organization_id = $1 AND user_id = $2 AND type = $3 RETURNING channel`,
        [organization.id, viewer.userId, type],
      );
      if (channel) {
        await this.ctx.tx.query(
          `INSERT INTO notification_preferences (organization_id, user_id, type, channel) VALUES ($1, $2, $3, $4)
           ON CONFLICT (organization_id, user_id, type) DO UPDATE SET channel = EXCLUDED.channel, updated_at = now()`,
          [organization.id, viewer.userId, type, channel],
        );
      }
      const old = before?.channel ?? null;
      const next = channel ?? null;
      await this.ctx.audit.record({
        organizationId: organization.id,
        action: 'notification.preference_changed',
        resourceType: 'notification_preference',
        resourceId: type,
        resourceName: type,
        changes: { changedFields: old === next ? [] : ['channel'], oldValues: old === next ? {} : { channel: old }, newValues: old === next ? {} : { channel: next } },
      });
    });
    return this.effective(organization.id);
  }

  async setDigest(organizationId: string, emailDigest: boolean): Promise<NotificationSettings> {
    const organization = await this.ctx.access.organization(organizationId);
    const viewer = await this.ctx.access.requireViewer();
    if (typeof emailDigest !== 'boolean') throw new BadUserInputError('emailDigest', 'emailDigest must be a boolean');
    await this.ctx.mutate(async () => {
      await this.serialise(`notification-settings:${organization.id}:${viewer.userId}`);
      const [before] = await this.ctx.tx.query<{ email_digest: boolean }>(
        `SELECT email_digest FROM notification_member_settings WHERE organization_id = $1 AND user_id = $2 FOR UPDATE`,
        [organization.id, viewer.userId],
      );
      await this.ctx.tx.query(
        `INSERT INTO notification_member_settings (organization_id, user_id, email_digest) VALUES ($1, $2, $3)
         ON CONFLICT (organization_id, user_id) DO UPDATE SET email_digest = EXCLUDED.email_digest, updated_at = now()`,
        [organization.id, viewer.userId, emailDigest],
      );
      const old = before?.email_digest ?? false;
      await this.ctx.audit.record({
        organizationId: organization.id,
        action: 'notification.digest_changed',
        resourceType: 'notification_settings',
        resourceId: viewer.userId,
        resourceName: viewer.email,
        changes: { changedFields: old === emailDigest ? [] : ['emailDigest'], oldValues: old === emailDigest ? {} : { emailDigest: old }, newValues: old === emailDigest ? {} : { emailDigest } },
      });
    });
    return this.effective(organization.id);
  }
}
