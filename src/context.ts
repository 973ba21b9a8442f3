import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { Access } from './authz/access';
import type { Principal } from './auth/principal';
import type { Config } from './config';
import type { Database } from './database/database';
import { TenantTransaction } from './database/tenant-transaction';
import { ActorType } from './modules/audit/audit-event.entity';
import { AuditWriter } from './modules/audit/audit.writer';
import { environmentLoaders } from './modules/environment/environment.loaders';
import { organizationLoaders } from './modules/organization/organization.loaders';
import { claimDefaultOrganization, provisionUser, type ViewerState } from './modules/user/user.provisioning';
import { userLoaders } from './modules/user/user.loaders';
import { workspaceLoaders } from './modules/workspace/workspace.loaders';
import type { Envelope } from './crypto/envelope';

export type Loaders = ReturnType<typeof organizationLoaders> &
  ReturnType<typeof workspaceLoaders> &
  ReturnType<typeof environmentLoaders> &
  ReturnType<typeof userLoaders>;

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
 * Everything a resolver needs for one request: the principal, its single transaction (opened
 * on first use with the principal's row-level-security settings), per-request loaders (so no
 * cached row ever crosses requests or tenants), the access checks and the audit writer.
 */
export class RequestContext {
  readonly requestId: string;
  readonly tx: TenantTransaction;
  readonly loaders: Loaders;
  readonly access: Access;
  readonly audit: AuditWriter;
  /**
   * Mutable per-request state lives in a holder: Apollo Server hands resolvers a shallow clone of
   * the context, and the clone must see what the transaction's bootstrap wrote.
   */
  private readonly state: { viewer: ViewerState | null } = { viewer: null };

  constructor(
    readonly app: AppServices,
    readonly principal: Principal,
    readonly origin: RequestOriginInfo,
  ) {
    this.requestId = origin.requestId ?? randomUUID();
    this.tx = new TenantTransaction(app.db, this.requestId, (query, tx) => this.bootstrap(query, tx));
    this.loaders = this.createLoaders();
    this.access = new Access(() => this.viewer(), this.loaders);
    this.audit = new AuditWriter(this.tx.query, () => this.actor(), {
      ipAddress: origin.ipAddress,
      userAgent: origin.userAgent,
      requestId: this.requestId,
    });
  }

  get config(): Config {
    return this.app.config;
  }

  private createLoaders(): Loaders {
    const ds = this.app.db.dataSource;
    const q = this.tx.query;
    return {
      ...organizationLoaders(q, ds),
      ...workspaceLoaders(q, ds, () => this.state.viewer?.userId ?? null),
      ...environmentLoaders(q, ds),
      ...userLoaders(q, ds),
    };
  }

  /** Runs first in the request transaction: provisions the user and sets the row-level-security scope. */
  private async bootstrap(query: Parameters<ConstructorParameters<typeof TenantTransaction>[2]>[0], tx: TenantTransaction): Promise<void> {
    if (this.principal.kind !== 'user') {
      await tx.setScope(query, null, []);
      return;
    }
    const viewer = await provisionUser(query, this.principal.identity);
    const claimed = await claimDefaultOrganization(query, viewer, this.config.adminEmail);
    await tx.setScope(query, viewer.userId, [...viewer.roles.keys()]);
    this.state.viewer = viewer;
    if (claimed) {
      await new AuditWriter(query, () => this.actor(), { ...this.origin, requestId: this.requestId }).record({
        organizationId: claimed,
        action: 'member.joined',
        resourceType: 'membership',
        resourceId: viewer.userId,
        resourceName: viewer.email,
        metadata: { roleKey: 'owner', via: 'ADMIN_EMAIL' },
      });
    }
  }

  /** The viewer (null for an anonymous request); opens the transaction when needed. */
  async viewer(): Promise<ViewerState | null> {
    if (this.principal.kind !== 'user') return null;
    if (!this.state.viewer) await this.tx.open();
    return this.state.viewer;
  }

  private actor() {
    const v = this.state.viewer;
    return v
      ? { type: ActorType.USER, id: v.userId, email: v.email, name: v.name }
      : { type: ActorType.SYSTEM, id: null, email: null, name: null };
  }

  /**
   * Runs a mutation's work in a savepoint of the request transaction: either the change and its
   * audit event are both kept, or neither. Loaders are cleared afterwards so the response reads
   * what was written.
   */
  async mutate<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await this.tx.savepoint(work);
    } finally {
      for (const loader of Object.values(this.loaders)) loader.clearAll();
    }
  }

  /** The principal now belongs to a new organization (created or joined in this request). */
  async joined(organizationId: string, roleKey: string): Promise<void> {
    const viewer = await this.access.requireViewer();
    viewer.roles.set(organizationId, roleKey);
    this.access.forget(organizationId);
    await this.tx.addToScope(organizationId);
  }
}
