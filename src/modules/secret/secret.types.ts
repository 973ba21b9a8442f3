import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';

export enum SecretScope {
  ORGANIZATION = 'ORGANIZATION',
  WORKSPACE = 'WORKSPACE',
}
registerEnumType(SecretScope, { name: 'SecretScope' });

/** SPEC §5: keys `^[A-Z_][A-Z0-9_]{0,127}$`, values at most 64 KiB. */
export const SECRET_KEY_PATTERN = /^[A-Z_][A-Z0-9_]{0,127}$/;
export const SECRET_VALUE_MAX_BYTES = 64 * 1024;

/** What may be shown of a secret: never its value. */
@ObjectType('SecretMetadata')
export class SecretMetadata {
  @Field() key: string;
  @Field(() => SecretScope) scope: SecretScope;
  @Field(() => ID, { nullable: true }) workspaceId: string | null;
  @Field(() => Int) version: number;
  @Field() createdAt: Date;
  @Field() updatedAt: Date;
  /** Resolved to `updatedBy: User` by the resolver. */
  updatedById: string | null;
  organizationId: string;
}

export interface SecretRow {
  organizationId: string;
  workspaceId: string | null;
  key: string;
  version: number;
  createdAt: Date;
  updatedAt: Date;
  updatedById: string | null;
}

export function toMetadata(row: SecretRow): SecretMetadata {
  return Object.assign(new SecretMetadata(), { ...row, scope: row.workspaceId ? SecretScope.WORKSPACE : SecretScope.ORGANIZATION });
}

/** Columns of the metadata (never sealed_value). */
export const METADATA_COLUMNS = `organization_id AS "organizationId", workspace_id AS "workspaceId", key, version,
  created_at AS "createdAt", updated_at AS "updatedAt", updated_by AS "updatedById"`;

/** Additional authenticated data of a sealed value: bound to its organization, scope and key. */
export function secretPurpose(workspaceId: string | null, key: string): string {
  return `secret:${workspaceId ?? 'organization'}:${key}`;
}

/** A secret value, for machines only (`resolveSecrets`, scope `secrets.read`). */
@ObjectType('ResolvedSecret')
export class ResolvedSecret {
  @Field() key: string;
  @Field() value: string;
  @Field(() => SecretScope) scope: SecretScope;
}
