import { Column, Entity, PrimaryColumn } from 'typeorm';
import { Field, ID, ObjectType, registerEnumType } from 'type-graphql';
import { JSONObjectScalar } from '../../common/scalars';

export enum ActorType {
  USER = 'USER',
  API_KEY = 'API_KEY',
  SYSTEM = 'SYSTEM',
}
registerEnumType(ActorType, { name: 'ActorType' });

@ObjectType('AuditActor')
export class AuditActor {
  @Field(() => ActorType) type: ActorType;
  @Field(() => ID, { nullable: true }) id: string | null;
  @Field(() => String, { nullable: true }) email: string | null;
  @Field(() => String, { nullable: true }) name: string | null;
}

/** Append-only: the service's role may insert and select, never update or delete. */
@Entity({ name: 'audit_events' })
@ObjectType('AuditEvent')
export class AuditEvent {
  @Field(() => ID)
  @PrimaryColumn('uuid')
  id: string;

  @Field(() => ID)
  @PrimaryColumn({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Field()
  @Column({ name: 'occurred_at', type: 'timestamptz' })
  occurredAt: Date;

  @Field()
  @Column('text')
  action: string;

  @Column({ name: 'actor_type', type: 'text' })
  actorType: ActorType;

  @Column({ name: 'actor_id', type: 'text', nullable: true })
  actorId: string | null;

  @Column({ name: 'actor_email', type: 'text', nullable: true })
  actorEmail: string | null;

  @Column({ name: 'actor_name', type: 'text', nullable: true })
  actorName: string | null;

  @Field(() => ID, { nullable: true })
  @Column({ name: 'workspace_id', type: 'uuid', nullable: true })
  workspaceId: string | null;

  @Field()
  @Column({ name: 'resource_type', type: 'text' })
  resourceType: string;

  @Field(() => ID, { nullable: true })
  @Column({ name: 'resource_id', type: 'text', nullable: true })
  resourceId: string | null;

  @Field(() => String, { nullable: true })
  @Column({ name: 'resource_name', type: 'text', nullable: true })
  resourceName: string | null;

  @Field(() => JSONObjectScalar, { nullable: true, description: 'For updates: { changedFields, oldValues, newValues }. Never holds a secret value.' })
  @Column({ type: 'jsonb', nullable: true })
  changes: Record<string, unknown> | null;

  @Field(() => JSONObjectScalar, { nullable: true })
  @Column({ type: 'jsonb', nullable: true })
  metadata: Record<string, unknown> | null;

  @Field(() => String, { nullable: true })
  @Column({ name: 'ip_address', type: 'text', nullable: true })
  ipAddress: string | null;

  @Field(() => String, { nullable: true })
  @Column({ name: 'user_agent', type: 'text', nullable: true })
  userAgent: string | null;

  @Field(() => String, { nullable: true })
  @Column({ name: 'request_id', type: 'text', nullable: true })
  requestId: string | null;
}
