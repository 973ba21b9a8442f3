import { Column, Entity, PrimaryColumn } from 'typeorm';
import { Directive, Field, Float, ID, Int, registerEnumType } from 'type-graphql';
import { PlainDataObjectType } from '../../graphql/plain-data';
import { numericTransformer } from '../../common/scalars';

export enum EnvironmentTier {
  DEV = 'DEV',
  STAGE = 'STAGE',
  PROD = 'PROD',
}
export enum DeploymentHost {
  LOCALHOST = 'LOCALHOST',
  CLOUDRUN = 'CLOUDRUN',
  AWS = 'AWS',
}
registerEnumType(EnvironmentTier, { name: 'EnvironmentTier' });
registerEnumType(DeploymentHost, { name: 'DeploymentHost' });

@PlainDataObjectType('EnvironmentResources')
export class EnvironmentResources {
  @Field(() => Float) cpu: number;
  @Field(() => Int) ramMb: number;
  @Field(() => Int) diskGb: number;
}

@Entity({ name: 'environments' })
@PlainDataObjectType('Environment')
@Directive('@key(fields: "id")')
export class Environment {
  @PrimaryColumn({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Field(() => ID)
  @PrimaryColumn('uuid')
  id: string;

  @Column({ name: 'workspace_id', type: 'uuid' })
  workspaceId: string;

  @Field()
  @Column('text')
  name: string;

  @Field()
  @Column('text')
  slug: string;

  @Field(() => EnvironmentTier)
  @Column('text')
  tier: EnvironmentTier;

  @Field(() => DeploymentHost)
  @Column({ name: 'deployment_host', type: 'text' })
  deploymentHost: DeploymentHost;

  @Field(() => String, { nullable: true })
  @Column({ name: 'execution_backend', type: 'text', nullable: true })
  executionBackend: string | null;

  @Field()
  @Column({ name: 'is_active', type: 'boolean' })
  isActive: boolean;

  @Column({ type: 'numeric', transformer: numericTransformer })
  cpu: number;

  @Column({ name: 'ram_mb', type: 'integer' })
  ramMb: number;

  @Column({ name: 'disk_gb', type: 'integer' })
  diskGb: number;

  /**
   * Whether envelope-encrypted credentials are stored (column `cloud_credentials`, write-only
   * through the API): computed by the query, the ciphertext itself is never read for the API.
   */
  @Field({ description: 'Credentials are write-only: this tells whether some are stored, never what.' })
  hasCloudCredentials: boolean;

  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy: string | null;

  @Field()
  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Field()
  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;

  @Field(() => Date, { nullable: true })
  @Column({ name: 'destroyed_at', type: 'timestamptz', nullable: true })
  destroyedAt: Date | null;
}
