import { Field, ID, InputType, ObjectType, registerEnumType } from 'type-graphql';
import { JSONObjectScalar } from '../../common/scalars';

export enum NotificationChannel {
  IN_APP = 'IN_APP',
  EMAIL = 'EMAIL',
  BOTH = 'BOTH',
  NONE = 'NONE',
}
registerEnumType(NotificationChannel, { name: 'NotificationChannel' });

export enum NotificationAudience {
  OWNERS_AND_ADMINS = 'OWNERS_AND_ADMINS',
  ALL_MEMBERS = 'ALL_MEMBERS',
  USER = 'USER',
}
registerEnumType(NotificationAudience, { name: 'NotificationAudience' });

/** SPEC §5: notification types are strings of this shape (else BAD_USER_INPUT). */
export const NOTIFICATION_TYPE_PATTERN = /^[a-z][a-z0-9_.]{1,63}$/;
export const TITLE_MAX_CHARS = 200;
export const BODY_MAX_BYTES = 4 * 1024;
export const METADATA_MAX_BYTES = 16 * 1024;

/** The types the service emits itself (SPEC §5). */
export const BUILT_IN_TYPES = ['member.invited', 'ownership.transferred', 'quota.warning', 'quota.blocked', 'billing.status_changed', 'security.settings_changed'] as const;
export type BuiltInType = (typeof BUILT_IN_TYPES)[number];

/** Types only the service itself writes (its own events and its outbox types): another service cannot publish them. */
export const RESERVED_TYPES: readonly string[] = [...BUILT_IN_TYPES, 'invitation.created', 'invitation.resent', 'notification.digest'];

/** The built-in default of a type when its organization set none: security and billing types BOTH, the others IN_APP. */
export function builtInDefault(type: string): NotificationChannel {
  return type.startsWith('security.') || type.startsWith('billing.') ? NotificationChannel.BOTH : NotificationChannel.IN_APP;
}

/** Security and billing emails also go to the organization's `settings.notificationEmail`. */
export const goesToOrganizationEmail = (type: string): boolean => type.startsWith('security.') || type.startsWith('billing.');

/** The same rule in SQL (one statement routes every recipient). */
export const BUILT_IN_DEFAULT_SQL = (typeParam: string) =>
  `(CASE WHEN ${typeParam} LIKE 'security.%' OR ${typeParam} LIKE 'billing.%' THEN 'BOTH' ELSE 'IN_APP' END)`;

@ObjectType('NotificationPreference')
export class NotificationPreference {
  @Field() type: string;
  @Field(() => NotificationChannel) channel: NotificationChannel;
}

@ObjectType('NotificationSettings')
export class NotificationSettings {
  @Field(() => [NotificationPreference]) preferences: NotificationPreference[];
  @Field({ description: 'Receive one daily email digest instead of one email per notification.' }) emailDigest: boolean;
}

@ObjectType('Notification')
export class Notification {
  @Field(() => ID) id: string;
  @Field(() => ID) organizationId: string;
  @Field() type: string;
  @Field() title: string;
  @Field(() => String, { nullable: true }) body: string | null;
  @Field(() => JSONObjectScalar, { nullable: true }) metadata: Record<string, unknown> | null;
  @Field() createdAt: Date;
  @Field(() => Date, { nullable: true }) readAt: Date | null;
}

@InputType('PublishNotificationInput')
export class PublishNotificationInput {
  @Field() type: string;
  @Field() title: string;
  @Field(() => String, { nullable: true }) body?: string | null;
  @Field(() => JSONObjectScalar, { nullable: true }) metadata?: Record<string, unknown> | null;
  @Field(() => NotificationAudience) audience: NotificationAudience;
  @Field(() => ID, { nullable: true, description: 'Required when audience is USER.' }) userId?: string | null;
}

/** What the emitter routes: one event of one organization. */
export interface NotificationMessage {
  type: string;
  title: string;
  body?: string | null;
  metadata?: Record<string, unknown> | null;
}

export const NOTIFICATION_COLUMNS = `organization_id AS "organizationId", id, type, title, body, metadata, created_at AS "createdAt", read_at AS "readAt"`;
