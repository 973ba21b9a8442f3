import pino from 'pino';
import { type AppServices, RequestContext } from '../../../src/context';
import { NotificationPublishService } from '../../../src/modules/notification/notification-publish.service';
import type { PublishNotificationInput } from '../../../src/modules/notification/notification.types';
import { ok, type TestApp } from '../../helpers/app';
import { readAll } from '../../helpers/db';
import { addMember, createOrganization, type CreatedOrganization, uniqueEmail } from '../../helpers/factories';

export interface Team {
  org: CreatedOrganization;
  owner: string;
  admin: string;
  member: string;
  viewer: string;
  ids: Record<'owner' | 'admin' | 'member' | 'viewer', string>;
}

/** An organization with one member of each system role (emails and user ids). */
export async function team(app: TestApp, label: string): Promise<Team> {
  const owner = uniqueEmail(`${label}-owner`);
  const org = await createOrganization(app, owner);
  const ownerId = ok(await app.gql<{ me: { user: { id: string } } }>(`{ me { user { id } } }`, {}, { as: owner })).me.user.id;
  const admin = uniqueEmail(`${label}-admin`);
  const member = uniqueEmail(`${label}-member`);
  const viewer = uniqueEmail(`${label}-viewer`);
  const ids = {
    owner: ownerId,
    admin: await addMember(app, org.id, admin, 'admin'),
    member: await addMember(app, org.id, member, 'member'),
    viewer: await addMember(app, org.id, viewer, 'viewer'),
  };
  return { org, owner, admin, member, viewer, ids };
}

/** Who got a type, on each channel, read on a connection that sees every row: inbox recipients and outbox addresses, sorted. */
export async function delivered(app: TestApp, organizationId: string, type: string): Promise<{ inbox: string[]; email: string[]; digest: string[] }> {
  const inbox = await readAll<{ email: string }>(app, `SELECT u.email FROM notifications n JOIN users u ON u.id = n.user_id WHERE n.organization_id = $1 AND n.type = $2`, [organizationId, type]);
  const email = await readAll<{ recipient_email: string }>(app, `SELECT recipient_email FROM email_outbox WHERE organization_id = $1 AND type = $2`, [organizationId, type]);
  const digest = await readAll<{ email: string }>(app, `SELECT u.email FROM notification_digest_items d JOIN users u ON u.id = d.user_id WHERE d.organization_id = $1 AND d.type = $2`, [
    organizationId,
    type,
  ]);
  return { inbox: inbox.map((r) => r.email).sort(), email: email.map((r) => r.recipient_email).sort(), digest: digest.map((r) => r.email).sort() };
}

export const sorted = (...emails: string[]): string[] => [...emails].sort();

export const UPDATE_ORG = `mutation($id: ID!, $input: UpdateOrganizationInput!) { updateOrganization(id: $id, input: $input) { id } }`;
export const SET_DEFAULT = `mutation($org: ID!, $type: String!, $channel: NotificationChannel!) { setOrganizationNotificationDefault(organizationId: $org, type: $type, channel: $channel) { type channel } }`;
export const SET_PREFERENCE = `mutation($org: ID!, $type: String!, $channel: NotificationChannel) { setNotificationPreference(organizationId: $org, type: $type, channel: $channel) { emailDigest preferences { type channel } } }`;
export const SET_DIGEST = `mutation($org: ID!, $on: Boolean!) { setNotificationDigest(organizationId: $org, emailDigest: $on) { emailDigest } }`;
export const SETTINGS = `query($org: ID!) { me { notificationSettings(organizationId: $org) { emailDigest preferences { type channel } } } }`;
export const INBOX = `query($first: Int, $after: String, $unreadOnly: Boolean) { me { unreadNotificationCount notifications(first: $first, after: $after, unreadOnly: $unreadOnly) { totalCount pageInfo { hasNextPage endCursor } edges { cursor } nodes { id organizationId type title body metadata createdAt readAt } } } }`;
export const MARK_READ = `mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) }`;

/** A security change (sessionTimeoutMinutes) that emits security.settings_changed. */
export const changeSecurity = async (app: TestApp, organizationId: string, as: string, minutes: number): Promise<void> => {
  ok(await app.gql(UPDATE_ORG, { id: organizationId, input: { security: { sessionTimeoutMinutes: minutes } } }, { as }));
};

/** Runs fn as the service itself inside one organization (a unit of work like a job's: ctx.mutate, then commit); rolls back when fn throws. */
export async function asSystem<T>(app: TestApp, organizationId: string, fn: (ctx: RequestContext) => Promise<T>): Promise<T> {
  const services: AppServices = { config: app.config, db: app.db, envelope: app.envelope, logger: pino({ level: 'silent' }) };
  const ctx = RequestContext.forSystem(services, organizationId, 'test:notifications');
  try {
    const result = await ctx.mutate(() => fn(ctx));
    await ctx.tx.finish(true);
    return result;
  } catch (error) {
    await ctx.tx.finish(false).catch(() => undefined);
    throw error;
  }
}

/** Publishes through the publish service (the API-key path's service), as the service itself. */
export const publish = (app: TestApp, organizationId: string, input: Record<string, unknown>): Promise<number> =>
  asSystem(app, organizationId, (ctx) => new NotificationPublishService(ctx).publishIn(organizationId, input as unknown as PublishNotificationInput));
