import { createRemoteJWKSet, errors, jwtVerify, type FlattenedJWSInput, type JWTHeaderParameters, type JWTPayload, type JWTVerifyGetKey, type KeyLike } from 'jose';
import { setBounded } from '../common/bounded-map';
import type { TokenIdentity } from './principal';

export interface TokenVerifier {
  /** Resolves the identity of a valid token; rejects with InvalidTokenError otherwise. */
  verify(token: string): Promise<TokenIdentity>;
}

export class InvalidTokenError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'InvalidTokenError';
  }
}

const MFA_METHODS = ['mfa', 'otp', 'hwk', 'swk'];
export const CLOCK_TOLERANCE_SECONDS = 60;

/** Control characters (NUL above all) would make every write of the user fail: they never enter the database. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/g;
const clean = (value: string): string => value.replace(CONTROL, '').trim();

export function identityFromClaims(payload: JWTPayload, options: { trustEmail?: boolean } = {}): TokenIdentity {
  const email = typeof payload.email === 'string' ? clean(payload.email).toLowerCase() : '';
  if (!payload.sub || clean(payload.sub) !== payload.sub) throw new InvalidTokenError('token has no usable sub');
  if (!email) throw new InvalidTokenError('token has no email claim');
  const amr = Array.isArray(payload.amr) ? payload.amr.filter((m): m is string => typeof m === 'string') : [];
  const authTime = typeof payload.auth_time === 'number' ? payload.auth_time : typeof payload.iat === 'number' ? payload.iat : null;
  return {
    subject: payload.sub,
    email,
    emailVerified: options.trustEmail === true || payload.email_verified === true,
    name: typeof payload.name === 'string' && clean(payload.name) ? clean(payload.name).slice(0, 255) : null,
    picture: typeof payload.picture === 'string' && /^https?:\/\/\S+$/.test(payload.picture) && clean(payload.picture) === payload.picture ? payload.picture.slice(0, 2048) : null,
    mfa: amr.some((m) => MFA_METHODS.includes(m)),
    authenticatedAt: authTime,
  };
}

export interface VerifierOptions {
  issuer: string;
  audience: string;
  algorithms: string[];
  /** The issuer's own tokens carry a verified email (the dev issuer). */
  trustEmail?: boolean;
}

/** A token whose signature was checked, what it says, and the key that checked it. */
interface VerifiedToken<T> {
  identity: T;
  header: JWTHeaderParameters;
  key: unknown;
  exp: number;
  nbf: number | undefined;
}

/** How many verified tokens are remembered (a token is a few hundred bytes). */
export const VERIFIED_TOKENS_MAX = 10_000;

/** The verification rules of a token issuer (pinned algorithms, issuer, audience). */
export interface JwtRules {
  issuer: string;
  audience: string;
  algorithms: string[];
}

/**
 * THE verification path of every JWT the service accepts (an external issuer's, the dev issuer's,
 * the service's own access tokens): jose with pinned algorithms, issuer, audience, exp and sub
 * required, ≤ 60 s of clock skew; `identify` turns the verified claims into what the caller needs.
 *
 * A signature check is a pure function of the token's bytes and the key, and costs more than the
 * rest of a small request: a token seen before is not checked again as long as the key that
 * verified it is still the one its header resolves to (a key dropped from the issuer's JWKS, or
 * replaced, or retired after a rotation, resolves to nothing or to another key object, and the
 * token is verified afresh or refused). Expiry and not-before are checked on every request.
 */
export function createJwtVerifier<T>(key: JWTVerifyGetKey | KeyLike | Uint8Array, rules: JwtRules, identify: (payload: JWTPayload) => T): { verify(token: string): Promise<T> } {
  const verified = new Map<string, VerifiedToken<T>>();
  const currentKey = async (header: JWTHeaderParameters, token: string): Promise<unknown> => {
    if (typeof key !== 'function') return key;
    const [protectedHeader = '', payload = '', signature = ''] = token.split('.');
    const jws: FlattenedJWSInput = { protected: protectedHeader, payload, signature };
    return key(header, jws);
  };
  const remembered = async (token: string): Promise<T | undefined> => {
    const hit = verified.get(token);
    if (!hit) return undefined;
    const now = Date.now() / 1000;
    if (hit.exp + CLOCK_TOLERANCE_SECONDS <= now || (hit.nbf !== undefined && hit.nbf - CLOCK_TOLERANCE_SECONDS > now)) {
      verified.delete(token);
      return undefined;
    }
    const stillTrusted = await currentKey(hit.header, token).then((k) => k === hit.key, () => false);
    if (!stillTrusted) {
      verified.delete(token);
      return undefined;
    }
    return hit.identity;
  };
  return {
    async verify(token: string): Promise<T> {
      const known = await remembered(token);
      if (known) return known;
      try {
        const result = await jwtVerify(token, key as JWTVerifyGetKey, {
          issuer: rules.issuer,
          audience: rules.audience,
          algorithms: rules.algorithms,
          requiredClaims: ['exp', 'sub'],
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
        });
        const { payload, protectedHeader } = result;
        const identity = Object.freeze(identify(payload));
        const usedKey = 'key' in result ? result.key : key;
        setBounded(verified, token, { identity, header: protectedHeader, key: usedKey, exp: payload.exp!, nbf: payload.nbf }, VERIFIED_TOKENS_MAX);
        return identity;
      } catch (error) {
        if (error instanceof InvalidTokenError) throw error;
        if (error instanceof errors.JOSEError) throw new InvalidTokenError(error.code);
        throw new InvalidTokenError('token could not be verified');
      }
    },
  };
}

/** A verifier of people's tokens (an external issuer's or the dev issuer's). */
export function createVerifier(key: JWTVerifyGetKey | KeyLike | Uint8Array, options: VerifierOptions): TokenVerifier {
  return createJwtVerifier(key, options, (payload) => identityFromClaims(payload, { trustEmail: options.trustEmail }));
}

/**
 * An external issuer's JWKS, cached; a token with an unknown `kid` triggers a refetch at most
 * once per cooldown (30 s), so a rotated key is picked up within that time.
 */
export function createExternalVerifier(options: VerifierOptions & { jwksUrl: string; cooldownMs?: number }): TokenVerifier {
  const jwks = createRemoteJWKSet(new URL(options.jwksUrl), {
    cooldownDuration: options.cooldownMs ?? 30_000,
    cacheMaxAge: 10 * 60_000,
    timeoutDuration: 5_000,
  });
  return createVerifier(jwks, options);
}
