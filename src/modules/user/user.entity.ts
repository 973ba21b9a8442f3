import { Column, Entity, PrimaryColumn } from 'typeorm';
import { Directive, Field, ID } from 'type-graphql';
import { PlainDataObjectType } from '../../graphql/plain-data';

/** A person, provisioned just in time from the claims of their first token (global table). */
@Entity({ name: 'users' })
@PlainDataObjectType('User')
@Directive('@key(fields: "id")')
export class User {
  @Field(() => ID)
  @PrimaryColumn('uuid')
  id: string;

  /** The issuer's `sub`; never shown. */
  @Column('text')
  subject: string;

  @Field()
  @Column('text')
  email: string;

  @Column({ name: 'email_verified', type: 'boolean' })
  emailVerified: boolean;

  @Field(() => String, { nullable: true })
  @Column({ type: 'text', nullable: true })
  name: string | null;

  @Field(() => String, { nullable: true })
  @Column({ name: 'avatar_url', type: 'text', nullable: true })
  avatarUrl: string | null;

  @Field()
  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
