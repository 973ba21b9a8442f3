import net from 'node:net';
import { BadUserInputError } from './errors';
import { NotAJsonObject } from './scalars';

/** Trimmed, 1–max characters; null or blank is refused. */
export function requiredName(value: string | null | undefined, field = 'name', max = 255): string {
  const trimmed = typeof value === 'string' ? value.trim() : '';
  if (trimmed.length < 1 || trimmed.length > max) throw new BadUserInputError(field, `${field} must be 1–${max} characters`);
  return trimmed;
}

/** Optional free text: trimmed, blank becomes null, at most max characters. */
export function optionalText(value: string | null | undefined, field: string, max = 2000): string | null {
  if (value === null || value === undefined) return null;
  const trimmed = value.trim();
  if (trimmed.length > max) throw new BadUserInputError(field, `${field} must be at most ${max} characters`);
  return trimmed || null;
}

/** Absolute http(s) URLs only: no javascript:, data: or relative URLs. */
export function optionalUrl(value: string | null | undefined, field: string, max = 2048): string | null {
  const text = optionalText(value, field, max);
  if (text === null) return null;
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new BadUserInputError(field, `${field} must be an absolute http(s) URL`);
  }
  if ((parsed.protocol !== 'https:' && parsed.protocol !== 'http:') || !parsed.hostname) {
    throw new BadUserInputError(field, `${field} must be an absolute http(s) URL`);
  }
  return text;
}

const EMAIL = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

export function optionalEmail(value: string | null | undefined, field: string): string | null {
  const text = optionalText(value, field, 254);
  if (text === null) return null;
  if (!EMAIL.test(text)) throw new BadUserInputError(field, `${field} must be a valid email address`);
  return text.toLowerCase();
}

const DOMAIN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

export function optionalDomain(value: string | null | undefined, field: string): string | null {
  const text = optionalText(value, field, 253)?.toLowerCase() ?? null;
  if (text !== null && !DOMAIN.test(text)) throw new BadUserInputError(field, `${field} must be a domain name such as example.com`);
  return text;
}

export function timezone(value: string, field: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: value });
  } catch {
    throw new BadUserInputError(field, `${field} must be a valid IANA time zone such as Europe/Paris`);
  }
  if (!/^[A-Za-z_+\-/0-9]+$/.test(value)) throw new BadUserInputError(field, `${field} must be a valid IANA time zone such as Europe/Paris`);
  return value;
}

/** An IPv4 or IPv6 CIDR (a bare address counts as a single host). */
export function parseCidr(value: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  const [address, bits, ...rest] = value.trim().split('/');
  if (rest.length > 0 || !address) return null;
  const version = net.isIP(address);
  if (version === 0) return null;
  const max = version === 4 ? 32 : 128;
  if (bits !== undefined && !/^\d{1,3}$/.test(bits)) return null;
  const prefix = bits === undefined ? max : Number(bits);
  if (prefix > max) return null;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

export function cidrList(values: string[], field: string): string[] {
  if (values.length > 100) throw new BadUserInputError(field, `${field} holds at most 100 entries`);
  return values.map((value) => {
    const parsed = parseCidr(value);
    if (!parsed) throw new BadUserInputError(field, `${field}: "${value}" is not a valid IPv4 or IPv6 CIDR`);
    return `${parsed.address}/${parsed.prefix}`;
  });
}

export const JSON_OBJECT_MAX_BYTES = 16 * 1024;

export function jsonObject(value: unknown, field: string, maxBytes = JSON_OBJECT_MAX_BYTES): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof NotAJsonObject) {
    throw new BadUserInputError(field, `${field} must be a JSON object`);
  }
  if (Buffer.byteLength(JSON.stringify(value), 'utf8') > maxBytes) throw new BadUserInputError(field, `${field} must be at most ${maxBytes / 1024} KiB of JSON`);
  return value as Record<string, unknown>;
}

const COLOR = /^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$/;

export function optionalColor(value: string | null | undefined, field: string): string | null {
  const text = optionalText(value, field, 9);
  if (text !== null && !COLOR.test(text)) throw new BadUserInputError(field, `${field} must be a hex color such as #1a2b3c`);
  return text;
}

export function intInRange(value: number, field: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw new BadUserInputError(field, `${field} must be a whole number from ${min} to ${max}`);
  return value;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Malformed ids are answered like missing ones (NOT_FOUND), without asking the database. */
export const isUuid = (value: unknown): value is string => typeof value === 'string' && UUID.test(value);
