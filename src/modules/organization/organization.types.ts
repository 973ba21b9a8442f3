import { Field, Int, ObjectType, registerEnumType } from 'type-graphql';
import { JSONObjectScalar } from '../../common/scalars';

export enum OrganizationStatus {
  ACTIVE = 'ACTIVE',
  SUSPENDED = 'SUSPENDED',
  DELETED = 'DELETED',
}
export enum SupportTier {
  COMMUNITY = 'COMMUNITY',
  STANDARD = 'STANDARD',
  PREMIUM = 'PREMIUM',
  ENTERPRISE = 'ENTERPRISE',
}
export enum StorageProvider {
  AWS_S3 = 'AWS_S3',
  CLOUDFLARE_R2 = 'CLOUDFLARE_R2',
  BACKBLAZE_B2 = 'BACKBLAZE_B2',
  MINIO = 'MINIO',
  SFTP = 'SFTP',
  FTP = 'FTP',
}
export enum BannerVariant {
  INFO = 'INFO',
  WARNING = 'WARNING',
  ERROR = 'ERROR',
}
registerEnumType(OrganizationStatus, { name: 'OrganizationStatus' });
registerEnumType(SupportTier, { name: 'SupportTier' });
registerEnumType(StorageProvider, { name: 'StorageProvider' });
registerEnumType(BannerVariant, { name: 'BannerVariant' });

/** Stored as JSON in organizations.settings. */
@ObjectType('OrganizationSettings')
export class OrganizationSettings {
  @Field() timezone: string;
  @Field() defaultBranch: string;
  @Field(() => StorageProvider, { nullable: true }) defaultStorageProvider: StorageProvider | null;
  @Field(() => String, { nullable: true }) notificationEmail: string | null;
  @Field(() => JSONObjectScalar, { description: 'Free-form settings for other services (a JSON object, at most 16 KiB).' })
  extra: Record<string, unknown>;
}

@ObjectType('SecuritySettings')
export class SecuritySettings {
  @Field() requireMfa: boolean;
  @Field(() => Int) sessionTimeoutMinutes: number;
  @Field(() => [String]) ipAllowlist: string[];
  @Field(() => Int) apiKeyMaxLifetimeDays: number;
  @Field() allowUserKeyOverride: boolean;
}

@ObjectType('Branding')
export class Branding {
  @Field(() => String, { nullable: true }) primaryColor: string | null;
  @Field(() => String, { nullable: true }) secondaryColor: string | null;
  @Field(() => String, { nullable: true }) accentColor: string | null;
  @Field(() => String, { nullable: true }) fontFamily: string | null;
}

@ObjectType('Banner')
export class Banner {
  @Field() message: string;
  @Field(() => BannerVariant) variant: BannerVariant;
  @Field() dismissible: boolean;
}

export const DEFAULT_SETTINGS: OrganizationSettings = {
  timezone: 'UTC',
  defaultBranch: 'main',
  defaultStorageProvider: null,
  notificationEmail: null,
  extra: {},
};
export const DEFAULT_SECURITY: SecuritySettings = {
  requireMfa: false,
  sessionTimeoutMinutes: 480,
  ipAllowlist: [],
  apiKeyMaxLifetimeDays: 365,
  allowUserKeyOverride: false,
};
export const DEFAULT_BRANDING: Branding = { primaryColor: null, secondaryColor: null, accentColor: null, fontFamily: null };
