import { createHash, randomBytes } from 'node:crypto';

/**
 * Invitation tokens: 256 random bits, base64url (43 characters). Only the SHA-256 is stored; the
 * token itself is returned once to the inviter and never written to audit, logs or errors.
 */
export const newInvitationToken = (): string => randomBytes(32).toString('base64url');

/** The stored form, as hex for `decode($n, 'hex')` (one encoding for pg and PGlite alike). */
export const invitationTokenHash = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

/** Anything else is answered like an unknown token (NOT_FOUND) without asking the database. */
export const isWellFormedInvitationToken = (token: unknown): token is string => typeof token === 'string' && /^[A-Za-z0-9_-]{43}$/.test(token);
