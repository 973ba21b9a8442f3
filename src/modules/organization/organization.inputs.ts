import { Field, InputType, Int } from 'type-graphql';
import { JSONObjectScalar } from '../../common/scalars';
import { BannerVariant, StorageProvider } from './organization.types';

@InputType('OrganizationSettingsInput')
export class OrganizationSettingsInput {
  @Field(() => String, { nullable: true }) timezone?: string | null;
  @Field(() => String, { nullable: true }) defaultBranch?: string | null;
  @Field(() => StorageProvider, { nullable: true }) defaultStorageProvider?: StorageProvider | null;
  @Field(() => String, { nullable: true }) notificationEmail?: string | null;
  @Field(() => JSONObjectScalar, { nullable: true }) extra?: Record<string, unknown> | null;
}

@InputType('SecuritySettingsInput')
export class SecuritySettingsInput {
  @Field(() => Boolean, { nullable: true }) requireMfa?: boolean | null;
  @Field(() => Int, { nullable: true }) sessionTimeoutMinutes?: number | null;
  @Field(() => [String], { nullable: true }) ipAllowlist?: string[] | null;
  @Field(() => Int, { nullable: true }) apiKeyMaxLifetimeDays?: number | null;
  @Field(() => Boolean, { nullable: true }) allowUserKeyOverride?: boolean | null;
}

@InputType('BrandingInput')
export class BrandingInput {
  @Field(() => String, { nullable: true }) primaryColor?: string | null;
  @Field(() => String, { nullable: true }) secondaryColor?: string | null;
  @Field(() => String, { nullable: true }) accentColor?: string | null;
  @Field(() => String, { nullable: true }) fontFamily?: string | null;
}

@InputType('BannerInput')
export class BannerInput {
  @Field() message: string;
  @Field(() => BannerVariant) variant: BannerVariant;
  @Field() dismissible: boolean;
}

@InputType('CreateOrganizationInput')
export class CreateOrganizationInput {
  @Field() name: string;
  @Field(() => String, { nullable: true, description: 'Derived from the name when omitted.' }) slug?: string | null;
  @Field(() => String, { nullable: true }) description?: string | null;
  @Field(() => String, { nullable: true }) website?: string | null;
  @Field(() => String, { nullable: true }) logoUrl?: string | null;
  @Field(() => String, { nullable: true }) billingEmail?: string | null;
  @Field(() => OrganizationSettingsInput, { nullable: true }) settings?: OrganizationSettingsInput | null;
}

@InputType('UpdateOrganizationInput', { description: 'PATCH semantics: an omitted field is left unchanged; an explicit null clears a nullable field.' })
export class UpdateOrganizationInput {
  @Field(() => String, { nullable: true }) name?: string | null;
  @Field(() => String, { nullable: true }) description?: string | null;
  @Field(() => String, { nullable: true }) website?: string | null;
  @Field(() => String, { nullable: true }) logoUrl?: string | null;
  @Field(() => String, { nullable: true }) industry?: string | null;
  @Field(() => String, { nullable: true }) primaryDomain?: string | null;
  @Field(() => String, { nullable: true }) contactEmail?: string | null;
  @Field(() => String, { nullable: true }) billingEmail?: string | null;
  @Field(() => OrganizationSettingsInput, { nullable: true }) settings?: OrganizationSettingsInput | null;
  @Field(() => SecuritySettingsInput, { nullable: true }) security?: SecuritySettingsInput | null;
  @Field(() => BrandingInput, { nullable: true }) branding?: BrandingInput | null;
  @Field(() => BannerInput, { nullable: true, description: 'null removes the banner' }) banner?: BannerInput | null;
}
