import { Column, Entity, PrimaryColumn } from 'typeorm';
import { Field, ID } from 'type-graphql';
import { PlainDataObjectType } from '../../graphql/plain-data';

/**
 * An organization role. The four system roles exist as rows in every organization (so that
 * memberships reference them by key with a tenant-carrying foreign key); their permissions come
 * from the matrix in src/authz, never from the row.
 */
@Entity({ name: 'roles' })
@PlainDataObjectType('Role')
export class Role {
  @PrimaryColumn({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Field(() => ID)
  @PrimaryColumn('uuid')
  id: string;

  @Field()
  @Column('text')
  key: string;

  @Field()
  @Column('text')
  name: string;

  @Field(() => String, { nullable: true })
  @Column({ type: 'text', nullable: true })
  description: string | null;

  @Field()
  @Column({ name: 'is_system', type: 'boolean' })
  isSystem: boolean;

  /** Custom roles only; see Role.permissions' resolver for the effective list. */
  @Column({ name: 'permissions', type: 'text', array: true })
  storedPermissions: string[];
}
