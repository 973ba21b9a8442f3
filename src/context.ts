import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { Access } from './authz/access';
import { ALLOWED_WHEN_DELETED, ALLOWED_WHILE_INACTIVE } from './authz/operations';
import { refusalTest } from './authz/security-settings';
import { OrganizationInactiveError } from './common/errors';
import { READ_ONLY_STATUSES } from './modules/billing/subscription.types';
import { OrganizationStatus } from './modules/organization/organization.types';
import { systemPrincipal, type Principal, type Viewer } from './auth/principal';
import type { Config } from './config';
import type { Envelope } from './crypto/envelope';
import type { Database } from './database/database';
import { type Session, TenantTransaction } from './database/tenant-transaction';
import { type LoaderSetMethods, loaderSetClass } from './database/loader-helpers';
import { ActorType } from './modules/audit/audit-event.entity';
import { apiKeyLoaders } from './modules/api-key/api-key.loaders';
import { auditLoaders } from './modules/audit/audit.loaders';
import { type AuditActorRef, AuditWriter } from './modules/audit/audit.writer';
import { planLoaders } from './modules/billing/plan.loaders';
import { environmentLoaders, environmentPrimer } from './modules/environment/environment.loaders';
import { featureFlagLoaders } from './modules/feature-flag/feature-flag.loaders';
import { secretLoaders } from './modules/secret/secret.loaders';
import { invitationLoaders } from './modules/invitation/invitation.loaders';
import { membershipLoaders } from './modules/membership/membership.loaders';
import { organizationLoaders } from './modules/organization/organization.loaders';
import { organizationDeletionLoaders } from './modules/organization/organization-deletion.impact';
import { claimOrganization, defaultOrganizationToClaim } from './modules/user/user.provisioning';
import { userLoaders } from './modules/user/user.loaders';
import { workspaceLoaders } from './modules/workspace/workspace.loaders';

export type Loaders = ReturnType<typeof organizationLoaders> &
  ReturnType<typeof workspaceLoaders> &
  ReturnType<typeof environmentLoaders> &
  ReturnType<typeof userLoaders> &
  ReturnType<typeof membershipLoaders> &
  ReturnType<typeof auditLoaders> &
  ReturnType<typeof planLoaders> &
  ReturnType<typeof featureFlagLoaders> &
  ReturnType<typeof secretLoaders> &
  ReturnType<typeof invitationLoaders> &
  ReturnType<typeof organizationDeletionLoaders> &
  ReturnType<typeof apiKeyLoaders> &
  LoaderSetMethods;

/** A request's loaders, each group built on first use (src/database/loader-helpers.ts). */
const RequestLoaders = loaderSetClass<Loaders>();

/** What lives for the whole process and every request shares. */
export interface AppServices {
  config: Config;
  db: Database;
  envelope: Envelope;
  logger: Logger;
}

export interface RequestOriginInfo {
  requestId?: string;
  ipAddress: string | null;
  userAgent: string | null;
}

/**
 * Everything a resolver (or a job) needs for one unit of work: the principal, its transaction
 * (opened on first use, scoped to the principal by row-level security), per-request loaders (so
 * no cached row ever crosses requests or tenants), the access checks and the audit writer.
 *
 * Dependencies run one way: opening the transaction resolves the session (viewer and
 * organizations); the context then applies the provisioning rule that needs the configuration
 * (ADMIN_EMAIL claims the seeded organization) through the same transaction and audit writer.
 */
export class RequestContext {
  readonly requestId: string;
  readonly tx: TenantTransaction;
  readonly loaders: Loaders;
  readonly access: Access;
  readonly audit: AuditWriter;
  /**
   * Mutable per-request state lives in a holder: Apollo Server hands resolvers a shallow clone of
   * the context, and the clone must share the session.
   */
  private readonly state: {
    session?: Promise<Session>;
    resolved?: Session;
    /** The organization the current mutation writes to, as its guard resolved it (null: none), and the mutation's name. */
    write?: { operation: string; organizationId: string | null; checked?: Promise<void> };
  } = {};

  constructor(
    readonly app: AppServices,
    readonly principal: Principal,
    readonly origin: RequestOriginInfo,
  ) {
    this.requestId = origin.requestId ?? randomUUID();
    this.tx = new TenantTransaction(app.db, principal, this.requestId);
    this.loaders = this.createLoaders();
    this.access = new Access(() => this.session(), this.loaders, () => this.assertWritable(), {
      principal,
      clientIp: origin.ipAddress,
      inMutation: () => this.state.write !== undefined,
    });
    this.audit = new AuditWriter(this.tx.query, () => this.actor(), {
      ipAddress: origin.ipAddress,
      userAgent: origin.userAgent,
      requestId: this.requestId,
    });
  }

  /** A unit of work of the service itself inside one organization (a job, a webhook): same transaction class, same audit writer. */
  static forSystem(app: AppServices, organizationId: string, job: string): RequestContext {
    return new RequestContext(app, systemPrincipal(organizationId, job), { requestId: `${job}:${randomUUID()}`, ipAddress: null, userAgent: null });
  }

  get config(): Config {
    return this.app.config;
  }

  private createLoaders(): Loaders {
    const ds = this.app.db.dataSource;
    // Loaders read through the session, so that the provisioning rules have run before any read;
    // where the only such rule (the ADMIN_EMAIL claim) cannot apply, a user's first read opens it.
    const q: TenantTransaction['query'] = async <T>(sql: string, params?: unknown[]) => {
      if (this.state.session === undefined && this.principal.kind === 'user' && this.app.db.pipelines && !this.mayClaim()) {
        // A user's first read opens the transaction itself, right behind BEGIN in one round trip
        // and one socket write (TenantTransaction.read); the session resolves from the same answer.
        const rows = this.tx.read<T>(sql, params);
        this.session().catch(() => undefined);
        return rows;
      }
      await this.session();
      return this.tx.query<T>(sql, params);
    };
    // Groups a later one uses come first (users, plans).
    return new RequestLoaders([
      () => userLoaders(q, ds),
      () => planLoaders(q),
      (l) => organizationLoaders(q, ds, l.userById, () => refusalTest(this.principal, Math.floor(Date.now() / 1000))),
      () => environmentLoaders(q, ds),
      (l) => workspaceLoaders(q, ds, async () => (await this.session()).viewer?.userId ?? null, environmentPrimer(ds, l)),
      (l) => membershipLoaders(q, ds, l),
      () => auditLoaders(q, ds),
      (l) => featureFlagLoaders(q, l),
      () => secretLoaders(q),
      () => invitationLoaders(q, ds),
      () => organizationDeletionLoaders(q),
      () => apiKeyLoaders(q),
    ]);
  }

  /**
   * Whether opening the session may claim the seeded organization (ADMIN_EMAIL, see openSession):
   * a write that must come before the request's reads. Decided from the token, as the session
   * will be (the provisioning stores the token's email).
   */
  private mayClaim(): boolean {
    const p = this.principal;
    return p.kind === 'user' && p.identity.email.toLowerCase() === this.config.adminEmail;
  }

  /** Opens the transaction once and resolves who the request acts for. */
  session(): Promise<Session> {
    this.state.session ??= this.openSession();
    return this.state.session;
  }

  private async openSession(): Promise<Session> {
    const session = await this.tx.open();
    this.state.resolved = session;
    const viewer = session.viewer;
    const claimable = viewer ? await defaultOrganizationToClaim(this.tx, session, viewer, this.config.adminEmail) : null;
    if (viewer && claimable) {
      // A write like a mutation's: in a savepoint, with its audit event, committed at once.
      const claimed = await this.tx.savepoint(async () => {
        if (!(await claimOrganization(this.tx, claimable, viewer))) return false;
        await this.audit.record({
          organizationId: claimable,
          action: 'member.joined',
          resourceType: 'membership',
          resourceId: viewer.userId,
          resourceName: viewer.email,
          metadata: { roleKey: 'owner', via: 'ADMIN_EMAIL' },
        });
        return true;
      });
      if (claimed) await this.tx.commit();
    }
    return session;
  }

  /** The viewer (null for anyone but a user); opens the transaction when needed. */
  async viewer(): Promise<Viewer | null> {
    if (this.principal.kind !== 'user') return null;
    return (await this.session()).viewer;
  }

  /** Who the unit of work acted for, as far as it was resolved (for the request log; never opens the transaction). */
  principalId(): string | null {
    if (this.principal.kind === 'system') return `system:${this.principal.job}`;
    const key = this.state.resolved?.apiKey;
    if (key) return `apikey:${key.id}`;
    return this.state.resolved?.viewer?.userId ?? null;
  }

  /** The API key this request authenticated as (null otherwise, or when its transaction never opened). */
  authenticatedApiKey(): { id: string; organizationId: string } | null {
    return this.state.resolved?.apiKey ?? null;
  }

  /** Who the audit trail names: the user, the API key (id, name) or the service's job (SPEC §5). */
  private actor(): AuditActorRef {
    const v = this.state.resolved?.viewer;
    if (v) return { type: ActorType.USER, id: v.userId, email: v.email, name: v.name };
    const key = this.state.resolved?.apiKey;
    if (key) return { type: ActorType.API_KEY, id: key.id, email: null, name: key.name };
    const job = this.principal.kind === 'system' ? this.principal.job : null;
    return { type: ActorType.SYSTEM, id: null, email: null, name: job };
  }

  /**
   * Runs a mutation's work in a savepoint, then commits: either the change and its audit event
   * are both stored, or neither, and the mutation's locks are released before its selection set
   * resolves (README, "Locks and the response"). Loaders and memoized permissions are cleared so
   * the response reads what was written.
   */
  async mutate<T>(work: () => Promise<T>): Promise<T> {
    await this.session();
    await this.assertWritable();
    try {
      const result = await this.tx.savepoint(work);
      await this.tx.commit();
      return result;
    } finally {
      this.loaders.clearAll();
      this.access.reset();
    }
  }

  /** Called by the shield rule of every mutation (before its resolver): the organization it writes to, if its guard names one. */
  scopeWrite(operation: string, organizationId: string | null): void {
    this.state.write = { operation, organizationId };
  }

  /**
   * SPEC §5: a SUSPENDED or EXPIRED organization is read-only except for billing, deletion and
   * member removal; a soft-deleted (DELETED) one is read-only for everything but its restore
   * (ORGANIZATION_INACTIVE, with `extensions.status`). Checked once per mutation, after visibility,
   * permission and input (the mutation's resolver validated before calling mutate) and before
   * feature flags, quotas and state (SPEC §6 order): `mutate` and `Access.requireFeature` call it.
   */
  assertWritable(): Promise<void> {
    const write = this.state.write;
    if (!write?.organizationId) return Promise.resolve();
    const organizationId = write.organizationId;
    write.checked ??= (async () => {
      // The organization's security settings (MFA, session timeout, IP allowlist) precede ORGANIZATION_INACTIVE (SPEC §6).
      await this.access.inside(organizationId);
      if (ALLOWED_WHEN_DELETED.has(write.operation)) return;
      const [row] = await this.tx.query<{ organization_status: string; status: string | null }>(
        `SELECT o.status AS organization_status, s.status FROM organizations o LEFT JOIN subscriptions s ON s.organization_id = o.id WHERE o.id = $1`,
        [write.organizationId],
      );
      if (row?.organization_status === OrganizationStatus.DELETED) throw new OrganizationInactiveError(OrganizationStatus.DELETED);
      if (ALLOWED_WHILE_INACTIVE.has(write.operation)) return;
      if (row?.status && (READ_ONLY_STATUSES as readonly string[]).includes(row.status)) throw new OrganizationInactiveError(row.status);
    })();
    return write.checked;
  }

  /** The principal now belongs to an organization (created or joined in this unit of work). */
  async joined(organizationId: string, roleKey: string): Promise<void> {
    await this.tx.widen(organizationId, roleKey);
  }
}
