import { BadUserInputError, NotFoundError } from '../../common/errors';
import { isUuid } from '../../common/validation';
import type { RequestContext } from '../../context';
import { NotificationEmitter, OWNERS_AND_ADMINS, type Recipients } from './notification.emitter';
import { validType } from './notification-settings.service';
import { BODY_MAX_BYTES, METADATA_MAX_BYTES, NotificationAudience, type PublishNotificationInput, RESERVED_TYPES, TITLE_MAX_CHARS } from './notification.types';

/** The input checks of publishNotification (BAD_USER_INPUT, naming the field; nothing is written). */
export function validatePublishInput(input: PublishNotificationInput): void {
  validType(input.type, 'type');
  // Nobody may speak for the platform: a published "security.settings_changed" would look like the real one.
  if (RESERVED_TYPES.includes(input.type)) throw new BadUserInputError('type', `'${input.type}' is emitted by the tenant service itself and cannot be published`);
  if (typeof input.title !== 'string' || input.title.trim().length === 0 || [...input.title].length > TITLE_MAX_CHARS) {
    throw new BadUserInputError('title', `title must be 1 to ${TITLE_MAX_CHARS} characters`);
  }
  if (input.body !== null && input.body !== undefined && Buffer.byteLength(input.body, 'utf8') > BODY_MAX_BYTES) {
    throw new BadUserInputError('body', 'body must be at most 4 KiB');
  }
  if (input.metadata !== null && input.metadata !== undefined && Buffer.byteLength(JSON.stringify(input.metadata), 'utf8') > METADATA_MAX_BYTES) {
    throw new BadUserInputError('metadata', 'metadata must be at most 16 KiB (as JSON)');
  }
  if (input.audience === NotificationAudience.USER && (input.userId === null || input.userId === undefined)) {
    throw new BadUserInputError('userId', 'userId is required when audience is USER');
  }
}

/**
 * Notifications other services publish (SPEC §5): `publishNotification` for API keys with the
 * `notifications.publish` scope (the shield rule; no role holds it, so a user token is FORBIDDEN).
 * The audience is resolved to the organization's current members at publish time and routed by
 * each recipient's settings; the answer is the number of recipients whose channel is not NONE.
 */
export class NotificationPublishService {
  constructor(private readonly ctx: RequestContext) {}

  /** Inside the caller's transaction (the mutation's savepoint): validates, resolves the audience, routes, audits. */
  async publishIn(organizationId: string, input: PublishNotificationInput): Promise<number> {
    validatePublishInput(input);
    let recipients: Recipients;
    switch (input.audience) {
      case NotificationAudience.OWNERS_AND_ADMINS:
        recipients = OWNERS_AND_ADMINS;
        break;
      case NotificationAudience.ALL_MEMBERS:
        recipients = { allMembers: true };
        break;
      case NotificationAudience.USER: {
        // A user who is not a current member is reported like an id that does not exist.
        const member = isUuid(input.userId)
          ? await this.ctx.tx.query(`SELECT 1 FROM memberships WHERE organization_id = $1 AND user_id = $2`, [organizationId, input.userId])
          : [];
        if (member.length === 0) throw new NotFoundError('User');
        recipients = { userIds: [input.userId!] };
        break;
      }
      default:
        throw new BadUserInputError('audience', 'unknown audience');
    }
    const routed = await new NotificationEmitter(this.ctx).emit(organizationId, { type: input.type, title: input.title, body: input.body, metadata: input.metadata }, recipients);
    await this.ctx.audit.record({
      organizationId,
      action: 'notification.published',
      resourceType: 'notification',
      resourceName: input.type,
      metadata: { type: input.type, audience: input.audience, ...(input.userId ? { userId: input.userId } : {}), recipients: routed.recipients },
    });
    return routed.recipients;
  }

  async publish(organizationId: string, input: PublishNotificationInput): Promise<number> {
    const organization = await this.ctx.access.organization(organizationId);
    validatePublishInput(input);
    return this.ctx.mutate(() => this.publishIn(organization.id, input));
  }
}
