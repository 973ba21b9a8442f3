import { Field, Float, InputType, Int } from 'type-graphql';
import { JSONObjectScalar } from '../../common/scalars';
import { DeploymentHost, EnvironmentTier } from './environment.entity';

@InputType('EnvironmentResourcesInput')
export class EnvironmentResourcesInput {
  @Field(() => Float) cpu: number;
  @Field(() => Int) ramMb: number;
  @Field(() => Int) diskGb: number;
}

@InputType('CreateEnvironmentInput')
export class CreateEnvironmentInput {
  @Field() name: string;
  @Field(() => String, { nullable: true }) slug?: string | null;
  @Field(() => EnvironmentTier) tier: EnvironmentTier;
  @Field(() => DeploymentHost, { nullable: true, defaultValue: DeploymentHost.LOCALHOST }) deploymentHost?: DeploymentHost | null;
  @Field(() => String, { nullable: true }) executionBackend?: string | null;
  @Field(() => EnvironmentResourcesInput) resources: EnvironmentResourcesInput;
  @Field(() => JSONObjectScalar, { nullable: true, description: 'Write-only: stored encrypted, never returned.' }) cloudCredentials?: Record<string, unknown> | null;
}

/** PATCH semantics: an omitted field is left unchanged. */
@InputType('UpdateEnvironmentInput')
export class UpdateEnvironmentInput {
  @Field(() => String, { nullable: true }) name?: string | null;
  @Field(() => EnvironmentTier, { nullable: true }) tier?: EnvironmentTier | null;
  @Field(() => DeploymentHost, { nullable: true }) deploymentHost?: DeploymentHost | null;
  @Field(() => String, { nullable: true }) executionBackend?: string | null;
  @Field(() => EnvironmentResourcesInput, { nullable: true }) resources?: EnvironmentResourcesInput | null;
  @Field(() => JSONObjectScalar, { nullable: true, description: 'null removes the stored credentials' }) cloudCredentials?: Record<string, unknown> | null;
}
