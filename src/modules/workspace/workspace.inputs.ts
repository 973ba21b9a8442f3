import { Field, InputType } from 'type-graphql';
import { WorkspaceVisibility } from './workspace.entity';

@InputType('CreateWorkspaceInput')
export class CreateWorkspaceInput {
  @Field() name: string;
  @Field(() => String, { nullable: true }) slug?: string | null;
  @Field(() => String, { nullable: true }) description?: string | null;
  @Field(() => WorkspaceVisibility, { nullable: true, defaultValue: WorkspaceVisibility.ORGANIZATION }) visibility?: WorkspaceVisibility | null;
}

/** PATCH semantics: an omitted field is left unchanged; an explicit null clears a nullable field. */
@InputType('UpdateWorkspaceInput')
export class UpdateWorkspaceInput {
  @Field(() => String, { nullable: true }) name?: string | null;
  @Field(() => String, { nullable: true }) slug?: string | null;
  @Field(() => String, { nullable: true }) description?: string | null;
  @Field(() => WorkspaceVisibility, { nullable: true }) visibility?: WorkspaceVisibility | null;
}
