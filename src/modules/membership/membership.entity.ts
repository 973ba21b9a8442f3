import { Column, Entity, PrimaryColumn } from 'typeorm';
import { Field, ID } from 'type-graphql';
import { PlainDataObjectType } from '../../graphql/plain-data';

@Entity({ name: 'memberships' })
@PlainDataObjectType('Membership')
export class Membership {
  @PrimaryColumn({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Field(() => ID)
  @PrimaryColumn('uuid')
  id: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId: string;

  @Column({ name: 'role_key', type: 'text' })
  roleKey: string;

  @Column({ name: 'invited_by', type: 'uuid', nullable: true })
  invitedBy: string | null;

  @Field()
  @Column({ name: 'joined_at', type: 'timestamptz' })
  joinedAt: Date;
}
