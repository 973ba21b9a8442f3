import { Connection } from './pagination';
import { AuditEvent } from '../modules/audit/audit-event.entity';
import { Invitation } from '../modules/invitation/invitation.entity';
import { Membership } from '../modules/membership/membership.entity';
import { Organization } from '../modules/organization/organization.entity';
import { Workspace } from '../modules/workspace/workspace.entity';
import { Notification } from '../modules/notification/notification.types';

/** The connection types of the API (one helper declares them all alike). */
export const OrganizationConnection = Connection('Organization', Organization);
export const WorkspaceConnection = Connection('Workspace', Workspace);
export const MembershipConnection = Connection('Membership', Membership);
export const InvitationConnection = Connection('Invitation', Invitation);
/** Audit connections have no totalCount: they may hold millions of rows. */
export const AuditEventConnection = Connection('AuditEvent', AuditEvent, { totalCount: false });
export const NotificationConnection = Connection('Notification', Notification);
