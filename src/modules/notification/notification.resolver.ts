import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Resolver, Root } from 'type-graphql';
import { NotificationConnection } from '../../common/connections';
import type { ConnectionShape } from '../../common/pagination';
import type { RequestContext } from '../../context';
import { Organization } from '../organization/organization.entity';
import { Viewer } from '../viewer/viewer.resolver';
import { NotificationInboxService } from './notification-inbox.service';
import { NotificationPublishService } from './notification-publish.service';
import { NotificationSettingsService } from './notification-settings.service';
import { type Notification, NotificationChannel, NotificationPreference, NotificationSettings, PublishNotificationInput } from './notification.types';

/** The viewer's side: effective settings, the inbox, the unread count. */
@Resolver(() => Viewer)
export class ViewerNotificationsResolver {
  @FieldResolver(() => NotificationSettings, { description: "The viewer's effective notification settings in an organization (own overrides over its defaults)." })
  notificationSettings(@Ctx() ctx: RequestContext, @Arg('organizationId', () => ID) organizationId: string): Promise<NotificationSettings> {
    return new NotificationSettingsService(ctx).effective(organizationId);
  }

  @FieldResolver(() => NotificationConnection)
  notifications(
    @Ctx() ctx: RequestContext,
    @Arg('first', () => Int, { nullable: true, defaultValue: 20 }) first: number,
    @Arg('after', () => String, { nullable: true }) after?: string | null,
    @Arg('unreadOnly', () => Boolean, { nullable: true, defaultValue: false }) unreadOnly?: boolean | null,
  ): Promise<ConnectionShape<Notification>> {
    return new NotificationInboxService(ctx).list(first, after, unreadOnly);
  }

  @FieldResolver(() => Int)
  unreadNotificationCount(@Ctx() ctx: RequestContext): Promise<number> {
    return new NotificationInboxService(ctx).unreadCount();
  }
}

@Resolver(() => Organization)
export class OrganizationNotificationsResolver {
  @FieldResolver(() => [NotificationPreference], { nullable: true, description: 'Default channel per notification type for the members (org.settings.view).' })
  notificationDefaults(@Root() o: Organization, @Ctx() ctx: RequestContext): Promise<NotificationPreference[]> {
    return new NotificationSettingsService(ctx).organizationDefaults(o.id);
  }
}

@Resolver()
export class NotificationMutationResolver {
  @Mutation(() => [NotificationPreference])
  setOrganizationNotificationDefault(
    @Ctx() ctx: RequestContext,
    @Arg('organizationId', () => ID) organizationId: string,
    @Arg('type', () => String) type: string,
    @Arg('channel', () => NotificationChannel) channel: NotificationChannel,
  ): Promise<NotificationPreference[]> {
    return new NotificationSettingsService(ctx).setOrganizationDefault(organizationId, type, channel);
  }

  @Mutation(() => NotificationSettings)
  setNotificationPreference(
    @Ctx() ctx: RequestContext,
    @Arg('organizationId', () => ID) organizationId: string,
    @Arg('type', () => String) type: string,
    @Arg('channel', () => NotificationChannel, { nullable: true }) channel?: NotificationChannel | null,
  ): Promise<NotificationSettings> {
    return new NotificationSettingsService(ctx).setPreference(organizationId, type, channel);
  }

  @Mutation(() => NotificationSettings)
  setNotificationDigest(
    @Ctx() ctx: RequestContext,
    @Arg('organizationId', () => ID) organizationId: string,
    @Arg('emailDigest', () => Boolean) emailDigest: boolean,
  ): Promise<NotificationSettings> {
    return new NotificationSettingsService(ctx).setDigest(organizationId, emailDigest);
  }

  @Mutation(() => Int, { description: 'For other services (API keys with notifications.publish): routed by each recipient\'s settings.' })
  publishNotification(
    @Ctx() ctx: RequestContext,
    @Arg('organizationId', () => ID) organizationId: string,
    @Arg('input', () => PublishNotificationInput) input: PublishNotificationInput,
  ): Promise<number> {
    return new NotificationPublishService(ctx).publish(organizationId, input);
  }

  @Mutation(() => Int)
  markNotificationsRead(@Ctx() ctx: RequestContext, @Arg('ids', () => [ID], { nullable: true }) ids?: string[] | null): Promise<number> {
    return new NotificationInboxService(ctx).markRead(ids);
  }
}
