import { AuditEvent } from '../modules/audit/audit-event.entity';
import { Environment } from '../modules/environment/environment.entity';
import { Invitation } from '../modules/invitation/invitation.entity';
import { Membership } from '../modules/membership/membership.entity';
import { Role } from '../modules/membership/role.entity';
import { Organization } from '../modules/organization/organization.entity';
import { User } from '../modules/user/user.entity';
import { Workspace, WorkspaceGrant } from '../modules/workspace/workspace.entity';

export const ENTITIES = [User, Organization, Role, Membership, Workspace, WorkspaceGrant, Environment, AuditEvent, Invitation];
