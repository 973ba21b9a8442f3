import { Column, Entity, PrimaryColumn } from 'typeorm';
import { Directive, Field, ID, ObjectType } from 'type-graphql';
import { Banner, Branding, OrganizationSettings, OrganizationStatus, SecuritySettings, SupportTier } from './organization.types';

/**
 * The tenant. A global table (its row is the tenant itself); the service's role sees only the
 * principal's organizations through row-level security.
 */
@Entity({ name: 'organizations' })
@ObjectType('Organization')
@Directive('@key(fields: "id")')
export class Organization {
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

  @Field(() => String, { nullable: true })
  @Column({ type: 'text', nullable: true })
  website: string | null;

  @Field(() => String, { nullable: true })
  @Column({ name: 'logo_url', type: 'text', nullable: true })
  logoUrl: string | null;

  @Field(() => String, { nullable: true })
  @Column({ type: 'text', nullable: true })
  industry: string | null;

  @Field(() => String, { nullable: true })
  @Column({ name: 'primary_domain', type: 'text', nullable: true })
  primaryDomain: string | null;

  @Field(() => String, { nullable: true })
  @Column({ name: 'contact_email', type: 'text', nullable: true })
  contactEmail: string | null;

  @Field(() => String, { nullable: true })
  @Column({ name: 'billing_email', type: 'text', nullable: true })
  billingEmail: string | null;

  @Field(() => SupportTier)
  @Column({ name: 'support_tier', type: 'text' })
  supportTier: SupportTier;

  @Field(() => OrganizationStatus)
  @Column('text')
  status: OrganizationStatus;

  @Column({ type: 'jsonb' })
  settings: OrganizationSettings;

  @Column({ type: 'jsonb' })
  security: SecuritySettings;

  @Column({ type: 'jsonb' })
  branding: Branding;

  @Column({ type: 'jsonb', nullable: true })
  banner: Banner | null;

  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy: string | null;

  @Field()
  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Field()
  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;

  @Field(() => Date, { nullable: true })
  @Column({ name: 'deleted_at', type: 'timestamptz', nullable: true })
  deletedAt: Date | null;

  @Field(() => Date, { nullable: true })
  @Column({ name: 'purge_at', type: 'timestamptz', nullable: true })
  purgeAt: Date | null;
}
