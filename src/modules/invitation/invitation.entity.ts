import { Column, Entity, PrimaryColumn } from 'typeorm';
import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import type { Role } from '../membership/role.entity';

export enum InvitationStatus {
  PENDING = 'PENDING',
  ACCEPTED = 'ACCEPTED',
  REVOKED = 'REVOKED',
  EXPIRED = 'EXPIRED',
  DECLINED = 'DECLINED',
}
registerEnumType(InvitationStatus, { name: 'InvitationStatus' });

/** What a lookup by token (or by the viewer's own address) found before the tenant was known. */
export interface InvitationPreview {
  organizationName: string;
  role: Role;
}

/**
 * An invitation to join an organization. The token is never stored: only its SHA-256, which
 * this entity does not even map (no query of the service selects it).
 */
@Entity({ name: 'invitations' })
@ObjectType('Invitation')
export class Invitation {
  @PrimaryColumn({ name: 'organization_id', type: 'uuid' })
  organizationId: string;

  @Field(() => ID)
  @PrimaryColumn('uuid')
  id: string;

  @Field()
  @Column('text')
  email: string;

  @Column({ name: 'role_key', type: 'text' })
  roleKey: string;

  /** As stored; the API shows a PENDING invitation past its expiry as EXPIRED (see `effectiveStatus`). */
  @Column({ name: 'status', type: 'text' })
  storedStatus: InvitationStatus;

  @Column({ name: 'valid_days', type: 'smallint' })
  validDays: number;

  @Column({ name: 'invited_by', type: 'uuid', nullable: true })
  invitedBy: string | null;

  @Field()
  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Field()
  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt: Date;

  @Field(() => Date, { nullable: true })
  @Column({ name: 'accepted_at', type: 'timestamptz', nullable: true })
  acceptedAt: Date | null;

  /** Set when the invitation was found by token or by the viewer's address, not through its organization. */
  preview?: InvitationPreview;
}

/** PENDING past its expiry reads as EXPIRED (the row itself becomes EXPIRED when someone tries to use it). */
export function effectiveStatus(invitation: Pick<Invitation, 'storedStatus' | 'expiresAt'>, now = new Date()): InvitationStatus {
  return invitation.storedStatus === InvitationStatus.PENDING && invitation.expiresAt.getTime() <= now.getTime() ? InvitationStatus.EXPIRED : invitation.storedStatus;
}

/** The columns an invitation is read with (never `token_hash`). */
export const INVITATION_COLUMNS = 'organization_id, id, email, role_key, status, valid_days, invited_by, created_at, expires_at, accepted_at';

@ObjectType('InvitationTicket', { description: 'Returned once to the inviter; the token is what the invitee presents to accept.' })
export class InvitationTicket {
  @Field(() => Invitation) invitation: Invitation;
  @Field() token: string;
}

@InputType('InviteMemberInput')
export class InviteMemberInput {
  @Field() email: string;
  @Field() roleKey: string;
  @Field(() => Int, { nullable: true, defaultValue: 7 }) expiresInDays?: number | null;
}
