import { Column, Entity, PrimaryColumn } from 'typeorm';
import { Directive, Field, ID, registerEnumType } from 'type-graphql';
import { PlainDataObjectType } from '../../graphql/plain-data';

export enum WorkspaceVisibility {
  ORGANIZATION = 'ORGANIZATION',
  RESTRICTED = 'RESTRICTED',
}
export enum WorkspaceRole {
  WORKSPACE_ADMIN = 'WORKSPACE_ADMIN',
  WORKSPACE_MEMBER = 'WORKSPACE_MEMBER',
  WORKSPACE_VIEWER = 'WORKSPACE_VIEWER',
}
registerEnumType(WorkspaceVisibility, { name: 'WorkspaceVisibility' });
registerEnumType(WorkspaceRole, { name: 'WorkspaceRole' });

@Entity({ name: 'workspaces' })
@PlainDataObjectType('Workspace')
@Directive('@key(fields: "id")')
export class Workspace {
  @PrimaryColumn({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Field(() => ID)
  @PrimaryColumn('uuid')
  id: string;

  @Field()
  @Column('text')
  name: string;

  @Field()
  @Column('text')
  slug: string;

  @Field(() => String, { nullable: true })
  @Column({ type: 'text', nullable: true })
  description: string | null;

  @Field()
  @Column({ name: 'is_default', type: 'boolean' })
  isDefault: boolean;

  @Field(() => WorkspaceVisibility)
  @Column('text')
  visibility: WorkspaceVisibility;

  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy: string | null;

  @Field()
  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Field()
  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}

/** A user's role inside one workspace, on top of their organization role. */
@Entity({ name: 'workspace_members' })
export class WorkspaceGrant {
  @PrimaryColumn({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @PrimaryColumn({ name: 'workspace_id', type: 'uuid' })
  workspaceId: string;

  @PrimaryColumn({ name: 'user_id', type: 'uuid' })
  userId: string;

  @Column('text')
  role: WorkspaceRole;

  @Column({ name: 'granted_by', type: 'uuid', nullable: true })
  grantedBy: string | null;

  @Column({ name: 'granted_at', type: 'timestamptz' })
  grantedAt: Date;
}
