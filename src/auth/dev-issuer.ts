import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type KeyLike } from 'jose';
import { writeFileOnce } from '../common/files';
import { createVerifier, type TokenVerifier } from './jwt';

export const DEV_ISSUER = 'urn:tenant-service:dev';
export const DEV_AUDIENCE = 'tenant-service';
const KEY_FILE = 'dev-issuer-key.json';

export interface DevTokenClaims {
  email: string;
  name?: string;
  mfa?: boolean;
  /** Lifetime in seconds (default 12 h). */
  ttlSeconds?: number;
  /** How long ago the user signed in (`auth_time`; default now): for session-timeout checks. */
  authenticatedSecondsAgo?: number;
}

/** `load(dataDir, { create: false })` found no key pair: minting a token with a new one would be refused by the service. */
export class DevIssuerKeyMissingError extends Error {
  constructor(readonly file: string) {
    super(`No dev issuer key at ${file}: start the service first (it creates the key), or set DATA_DIR to the service's data directory`);
    this.name = 'DevIssuerKeyMissingError';
  }
}

/**
 * The development issuer: an ES256 key pair kept in DATA_DIR. Never used in production.
 * `npm run token` reads only this file, so it works while the service runs.
 */
export class DevIssuer {
  private constructor(
    private readonly privateKey: KeyLike,
    readonly publicJwk: JWK,
  ) {}

  /** The key pair in `dataDir`; made there unless `create` is false (then DevIssuerKeyMissingError). */
  static async load(dataDir: string, options: { create?: boolean } = {}): Promise<DevIssuer> {
    const file = path.join(dataDir, KEY_FILE);
    if (!fs.existsSync(file)) {
      if (options.create === false) throw new DevIssuerKeyMissingError(file);
      const { privateKey } = await generateKeyPair('ES256', { extractable: true });
      const jwk = { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: 'ES256', use: 'sig' };
      // Instances starting together keep the first key pair written.
      writeFileOnce(file, JSON.stringify(jwk));
    }
    const jwk = JSON.parse(fs.readFileSync(file, 'utf8')) as JWK;
    const privateKey = (await importJWK(jwk, 'ES256')) as KeyLike;
    const { d: _private, ...publicJwk } = jwk;
    return new DevIssuer(privateKey, publicJwk);
  }

  /** Dev tokens subject is derived from the email, so a new token for the same email is the same user. */
  static subjectFor(email: string): string {
    return `dev|${email.trim().toLowerCase()}`;
  }

  async sign(claims: DevTokenClaims): Promise<string> {
    const email = claims.email.trim().toLowerCase();
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      email,
      email_verified: true,
      ...(claims.name ? { name: claims.name } : {}),
      amr: claims.mfa ? ['pwd', 'mfa'] : ['pwd'],
      auth_time: now - (claims.authenticatedSecondsAgo ?? 0),
    })
      .setProtectedHeader({ alg: 'ES256', kid: this.publicJwk.kid, typ: 'JWT' })
      .setIssuer(DEV_ISSUER)
      .setAudience(DEV_AUDIENCE)
      .setSubject(DevIssuer.subjectFor(email))
      .setIssuedAt(now)
      .setExpirationTime(now + (claims.ttlSeconds ?? 12 * 3600))
      .sign(this.privateKey);
  }

  async verifier(): Promise<TokenVerifier> {
    const publicKey = (await importJWK(this.publicJwk, 'ES256')) as KeyLike;
    return createVerifier(publicKey, { issuer: DEV_ISSUER, audience: DEV_AUDIENCE, algorithms: ['ES256'], trustEmail: true });
  }
}
