import { randomUUID } from 'node:crypto';
import { decodeJwt, errors, exportJWK, generateKeyPair, importJWK, type JWK, type JWTHeaderParameters, type KeyLike, SignJWT } from 'jose';
import { setBounded } from '../common/bounded-map';
import type { Envelope } from '../crypto/envelope';
import type { Database } from '../database/database';
import { type SqlQuery, TenantTransaction } from '../database/tenant-transaction';
import { CLOCK_TOLERANCE_SECONDS, createJwtVerifier, InvalidTokenError, VERIFIED_TOKENS_MAX } from './jwt';
import { ANONYMOUS, type ApiKeyCredential } from './principal';

/** The service's own access tokens (exchanged API keys): issuer, audience, lifetime (SPEC §2: 15 minutes). */
export const SERVICE_ISSUER = 'urn:tenant-service';
export const SERVICE_AUDIENCE = 'tenant-service';
export const ACCESS_TOKEN_TTL_SECONDS = 15 * 60;
const ALGORITHM = 'ES256';
/**
 * How long a rotated-out key keeps verifying: every token it signed expires within that time
 * (lifetime plus the clock tolerance), so a rotation never cuts a valid token short.
 */
export const SIGNING_KEY_OVERLAP_SECONDS = ACCESS_TOKEN_TTL_SECONDS + CLOCK_TOLERANCE_SECONDS;
/** The signing key is rotated (at the next exchange) once the current one is older than this. */
export const SIGNING_KEY_MAX_AGE_DAYS = 30;
/** How long an instance trusts its copy of the key set before reading it again (an unknown kid reads it at once, at most once a second). */
const CACHE_MS = 30_000;
const UNKNOWN_KID_COOLDOWN_MS = 1_000;
/** Serializes the first key's creation across instances (pg_advisory_xact_lock). */
const CREATE_LOCK_KEY = 7_461_220_455;
const SUB = /^apikey:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;

interface KeyRow {
  kid: string;
  public_jwk: JWK;
  sealed_private_key?: Buffer | Uint8Array;
  created_at: Date;
  retires_at: Date | null;
}

interface PublishedKey {
  kid: string;
  jwk: JWK;
  publicKey: KeyLike;
  createdAt: number;
  retiresAt: number | null;
}

/** What a signing key's sealed private half is bound to (its kid): master-key rotation reseals it with the same purpose. */
export const signingKeyPurpose = (kid: string): string => `signing-key:${kid}`;
const privatePurpose = signingKeyPurpose;

/**
 * The service's JWT signing keys (SPEC §7): ES256 key pairs stored in `service_signing_keys`,
 * shared by every instance; the private half sealed by SECRETS_MASTER_KEY. The newest key that is
 * not retiring signs; every key not yet retired verifies and is published in the JWKS. Rotation adds
 * a key and retires the others after SIGNING_KEY_OVERLAP_SECONDS, during which both verify.
 *
 * Each instance keeps a copy of the published keys (read again every 30 s, and at once — at most
 * once a second — for a kid it does not know, so a token signed by another instance with a newer
 * key verifies immediately). The same key object is kept for a kid while it is published: the
 * verified-token cache of src/auth/jwt.ts trusts a token only while its kid resolves to that object.
 */
export class ServiceKeyring {
  private published = new Map<string, PublishedKey>();
  private loadedAt = 0;
  private loading?: Promise<void>;
  private lastUnknownKidLoad = 0;
  private readonly privateKeys = new Map<string, KeyLike>();

  constructor(
    private readonly db: Database,
    private readonly envelope: Envelope,
  ) {}

  /** A short read-only unit of work of its own (outside any request transaction). */
  private read<T>(fn: (query: SqlQuery) => Promise<T>): Promise<T> {
    return TenantTransaction.run(this.db, ANONYMOUS, `signing-keys:${randomUUID()}`, (tx) => fn(tx.query));
  }

  private async refresh(query?: SqlQuery): Promise<void> {
    const load = async (q: SqlQuery) => {
      const rows = await q<KeyRow>(
        `SELECT kid, public_jwk, created_at, retires_at FROM service_signing_keys WHERE retires_at IS NULL OR retires_at > now() ORDER BY created_at, kid`,
      );
      const next = new Map<string, PublishedKey>();
      for (const row of rows) {
        const known = this.published.get(row.kid);
        const publicKey = known?.publicKey ?? ((await importJWK(row.public_jwk, ALGORITHM)) as KeyLike);
        next.set(row.kid, { kid: row.kid, jwk: row.public_jwk, publicKey, createdAt: new Date(row.created_at).getTime(), retiresAt: row.retires_at ? new Date(row.retires_at).getTime() : null });
      }
      this.published = next;
      this.loadedAt = Date.now();
    };
    if (query) return load(query);
    this.loading ??= this.read(load).finally(() => (this.loading = undefined));
    return this.loading;
  }

  private async current(): Promise<Map<string, PublishedKey>> {
    if (Date.now() - this.loadedAt > CACHE_MS) await this.refresh();
    return this.published;
  }

  /** jose's key resolver: the published key of the token's kid (not retired), else no match. */
  readonly getKey = async (header: JWTHeaderParameters): Promise<KeyLike> => {
    const kid = header.kid;
    if (!kid || header.alg !== ALGORITHM) throw new errors.JWKSNoMatchingKey();
    let keys = await this.current();
    if (!keys.has(kid) && Date.now() - this.lastUnknownKidLoad > UNKNOWN_KID_COOLDOWN_MS) {
      this.lastUnknownKidLoad = Date.now();
      await this.refresh();
      keys = this.published;
    }
    const key = keys.get(kid);
    if (!key || (key.retiresAt !== null && key.retiresAt <= Date.now())) throw new errors.JWKSNoMatchingKey();
    return key.publicKey;
  };

  /** `GET /.well-known/jwks.json`: every key that verifies now (public halves only). Makes the first key when there is none. */
  async jwks(): Promise<{ keys: JWK[] }> {
    await this.refresh();
    if (this.published.size === 0) {
      await TenantTransaction.run(this.db, ANONYMOUS, `signing-keys:${randomUUID()}`, (tx) => this.ensureKey(tx.query));
      await this.refresh();
    }
    return { keys: [...this.published.values()].map((k) => k.jwk) };
  }

  /** Makes the first signing key when there is none (one instance does; the others wait for it and find it). */
  private async ensureKey(query: SqlQuery): Promise<void> {
    await query(`SELECT pg_advisory_xact_lock($1)`, [CREATE_LOCK_KEY]);
    const [existing] = await query(`SELECT 1 FROM service_signing_keys WHERE retires_at IS NULL OR retires_at > now() LIMIT 1`);
    if (!existing) await this.insertKey(query);
  }

  private insertKey(query: SqlQuery): Promise<string> {
    return insertSigningKey(query, this.envelope);
  }

  /** Adds a new signing key and retires the others after the overlap (rotateSigningKey); this instance reads the key set again. */
  async rotate(query: SqlQuery): Promise<string> {
    const kid = await rotateSigningKey(query, this.envelope);
    this.loadedAt = 0;
    return kid;
  }

  /** Rotates when the current signing key is older than SIGNING_KEY_MAX_AGE_DAYS; true when it did. */
  async rotateIfOld(query: SqlQuery): Promise<boolean> {
    await query(`SELECT pg_advisory_xact_lock($1)`, [CREATE_LOCK_KEY]);
    const [fresh] = await query(`SELECT 1 FROM service_signing_keys WHERE retires_at IS NULL AND created_at > now() - make_interval(days => $1)`, [SIGNING_KEY_MAX_AGE_DAYS]);
    if (fresh) return false;
    await this.rotate(query);
    return true;
  }

  /**
   * The key that signs now: the newest not retiring, its private half unsealed once per process.
   * Made when there is none; rotated when it is older than SIGNING_KEY_MAX_AGE_DAYS (automatic
   * rotation by age, at the first exchange after that: one instance does it under the lock, the
   * others find the new key).
   */
  private async signingKey(query: SqlQuery): Promise<{ kid: string; privateKey: KeyLike }> {
    const newest = () =>
      query<KeyRow & { old: boolean }>(
        `SELECT kid, sealed_private_key, created_at <= now() - make_interval(days => $1) AS old
         FROM service_signing_keys WHERE retires_at IS NULL ORDER BY created_at DESC, kid DESC LIMIT 1`,
        [SIGNING_KEY_MAX_AGE_DAYS],
      );
    let [row] = await newest();
    if (!row) await this.ensureKey(query);
    else if (row.old) await this.rotateIfOld(query);
    if (!row || row.old) [row] = await newest();
    if (!row?.sealed_private_key) throw new Error('no signing key');
    let privateKey = this.privateKeys.get(row.kid);
    if (!privateKey) {
      const jwk = JSON.parse(this.envelope.openWithMaster(privatePurpose(row.kid), Buffer.from(row.sealed_private_key)).plaintext.toString('utf8')) as JWK;
      privateKey = (await importJWK(jwk, ALGORITHM)) as KeyLike;
      this.privateKeys.set(row.kid, privateKey);
    }
    return { kid: row.kid, privateKey };
  }

  /** A 15-minute access token for an API key: sub `apikey:<id>`, the organization (`org`), the scopes. */
  async sign(query: SqlQuery, key: { id: string; organizationId: string; scopes: readonly string[] }): Promise<{ token: string; expiresAt: Date }> {
    const { kid, privateKey } = await this.signingKey(query);
    const now = Math.floor(Date.now() / 1000);
    const exp = now + ACCESS_TOKEN_TTL_SECONDS;
    const token = await new SignJWT({ org: key.organizationId, scopes: [...key.scopes] })
      .setProtectedHeader({ alg: ALGORITHM, kid, typ: 'JWT' })
      .setIssuer(SERVICE_ISSUER)
      .setAudience(SERVICE_AUDIENCE)
      .setSubject(`apikey:${key.id}`)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(privateKey);
    return { token, expiresAt: new Date(exp * 1000) };
  }

  /** The service's tokens through the one verification path (src/auth/jwt.ts): the key id of the `sub`. */
  readonly verifier = createJwtVerifier(this.getKey, { issuer: SERVICE_ISSUER, audience: SERVICE_AUDIENCE, algorithms: [ALGORITHM] }, (payload): ApiKeyCredential => {
    const match = typeof payload.sub === 'string' ? SUB.exec(payload.sub) : null;
    if (!match) throw new InvalidTokenError('token has no usable sub');
    return { via: 'token', keyId: match[1]!.toLowerCase() };
  });
}

async function insertSigningKey(query: SqlQuery, envelope: Envelope): Promise<string> {
  const { privateKey, publicKey } = await generateKeyPair(ALGORITHM, { extractable: true });
  const kid = randomUUID();
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: ALGORITHM, use: 'sig' };
  const sealed = envelope.sealWithMaster(signingKeyPurpose(kid), Buffer.from(JSON.stringify(await exportJWK(privateKey))));
  await query(`INSERT INTO service_signing_keys (kid, algorithm, public_jwk, sealed_private_key) VALUES ($1, $2, $3, $4)`, [kid, ALGORITHM, JSON.stringify(publicJwk), sealed]);
  return kid;
}

/**
 * Adds a new signing key and retires the others after SIGNING_KEY_OVERLAP_SECONDS (both verify
 * meanwhile); keys retired for more than a day go. Under the creation lock, so concurrent
 * rotations queue. The caller's transaction commits it (the service, or `npm run rotate-signing-key`).
 */
export async function rotateSigningKey(query: SqlQuery, envelope: Envelope): Promise<string> {
  await query(`SELECT pg_advisory_xact_lock($1)`, [CREATE_LOCK_KEY]);
  await query(`UPDATE service_signing_keys SET retires_at = now() + make_interval(secs => $1) WHERE retires_at IS NULL`, [SIGNING_KEY_OVERLAP_SECONDS]);
  const kid = await insertSigningKey(query, envelope);
  await query(`DELETE FROM service_signing_keys WHERE retires_at IS NOT NULL AND retires_at < now() - interval '1 day'`);
  return kid;
}

/** Answers of isServiceToken for tokens seen lately: a client sends the same bearer with every request. */
const claimedIssuer = new Map<string, boolean>();

/** Whether a bearer JWT claims to be the service's own (then only the service's keys may verify it). */
export function isServiceToken(token: string): boolean {
  let ours = claimedIssuer.get(token);
  if (ours === undefined) {
    try {
      ours = decodeJwt(token).iss === SERVICE_ISSUER;
    } catch {
      ours = false;
    }
    // A claim, not a verification: a pure function of the token's bytes, bounded like the verified tokens.
    setBounded(claimedIssuer, token, ours, VERIFIED_TOKENS_MAX);
  }
  return ours;
}

const keyrings = new WeakMap<Database, ServiceKeyring>();
/** The process's keyring for a database (one per database: the copy of the published keys is shared by the server, its requests and its jobs). */
export function serviceKeyring(db: Database, envelope: Envelope): ServiceKeyring {
  let keyring = keyrings.get(db);
  if (!keyring) keyrings.set(db, (keyring = new ServiceKeyring(db, envelope)));
  return keyring;
}
