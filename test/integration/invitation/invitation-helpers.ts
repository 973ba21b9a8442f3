import { generateKeyPair, type KeyLike, SignJWT } from 'jose';
import { createVerifier } from '../../../src/auth/jwt';
import { createLogger } from '../../../src/common/logging';
import { loadConfig } from '../../../src/config';
import { type GqlResult, ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll } from '../../helpers/db';

const ISSUER = 'urn:test:invitations';
const AUDIENCE = 'tenant-service-test';

/**
 * A test app whose issuer says whether an email is verified (the dev issuer always says yes), and
 * whose log is captured at debug level (tests look for tokens in it).
 */
export interface InvitationApp {
  app: TestApp;
  logLines: string[];
  /** Runs a document as a user (verified email unless told otherwise), or anonymously. */
  as(email: string | null, document: string, variables?: Record<string, unknown>, options?: { verified?: boolean }): Promise<GqlResult>;
}

export async function startInvitationApp(): Promise<InvitationApp> {
  const { privateKey, publicKey } = (await generateKeyPair('ES256')) as { privateKey: KeyLike; publicKey: KeyLike };
  const verifier = createVerifier(publicKey, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['ES256'] });
  const logLines: string[] = [];
  const logger = createLogger(loadConfig({ NODE_ENV: 'development', LOG_LEVEL: 'debug' }).logLevel, { write: (line: string) => void logLines.push(line) });
  const app = await startTestApp({ verifier, logger });
  const tokens = new Map<string, string>();
  const sign = async (email: string, verified: boolean) => {
    const key = `${email}:${verified}`;
    if (!tokens.has(key)) {
      tokens.set(
        key,
        await new SignJWT({ email, email_verified: verified })
          .setProtectedHeader({ alg: 'ES256' })
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .setSubject(`test|${email.toLowerCase()}`)
          .setIssuedAt()
          .setExpirationTime('2h')
          .sign(privateKey),
      );
    }
    return tokens.get(key)!;
  };
  return {
    app,
    logLines,
    as: async (email, document, variables = {}, options = {}) => app.gql(document, variables, email === null ? {} : { token: await sign(email, options.verified ?? true) }),
  };
}

export const INVITE = `mutation($org: ID!, $input: InviteMemberInput!) {
  inviteMember(organizationId: $org, input: $input) { token invitation { id email status expiresAt createdAt acceptedAt role { key } organization { id name } invitedBy { email } } }
}`;
export const ACCEPT = `mutation($token: String!) { acceptInvitation(token: $token) { id joinedAt role { key } organization { id } user { email } } }`;
export const DECLINE = `mutation($token: String!) { declineInvitation(token: $token) { id status } }`;
export const REVOKE = `mutation($id: ID!) { revokeInvitation(id: $id) { id status } }`;
export const RESEND = `mutation($id: ID!) { resendInvitation(id: $id) { token invitation { id status expiresAt } } }`;
export const PREVIEW = `query($token: String!) { invitation(token: $token) { id email status expiresAt role { key name } organization { name } invitedBy { id } } }`;
export const CREATE_ORG = `mutation($name: String!) { createOrganization(input: { name: $name }) { id name } }`;
export const ME = `{ me { user { id } } }`;

export interface Ticket {
  token: string;
  invitation: { id: string; email: string; status: string; expiresAt: string; role: { key: string } };
}

export async function invite(t: InvitationApp, inviter: string, org: string, email: string, roleKey = 'member', expiresInDays?: number): Promise<Ticket> {
  return ok(await t.as(inviter, INVITE, { org, input: { email, roleKey, ...(expiresInDays !== undefined ? { expiresInDays } : {}) } })).inviteMember as Ticket;
}

export async function createOrg(t: InvitationApp, owner: string, name: string): Promise<string> {
  return ok(await t.as(owner, CREATE_ORG, { name })).createOrganization.id as string;
}

export async function userId(t: InvitationApp, email: string): Promise<string> {
  return ok(await t.as(email, ME)).me.user.id as string;
}

/** The stored row, read on a connection that sees every row. */
export async function storedInvitation(t: InvitationApp, id: string): Promise<Record<string, any>> {
  const [row] = await readAll(t.app, `SELECT *, encode(token_hash, 'hex') AS hash FROM invitations WHERE id = $1`, [id]);
  return row!;
}

export const memberCount = async (t: InvitationApp, org: string, user: string): Promise<number> =>
  (await readAll<{ n: number }>(t.app, `SELECT count(*)::int AS n FROM memberships WHERE organization_id = $1 AND user_id = $2`, [org, user]))[0]!.n;

export const auditCount = async (t: InvitationApp, org: string, action: string): Promise<number> =>
  (await readAll<{ n: number }>(t.app, `SELECT count(*)::int AS n FROM audit_events WHERE organization_id = $1 AND action = $2`, [org, action]))[0]!.n;

export const errorOf = (r: GqlResult) => ({ code: r.errors?.[0]?.extensions?.code, reason: r.errors?.[0]?.extensions?.reason, field: r.errors?.[0]?.extensions?.field, message: r.errors?.[0]?.message });
