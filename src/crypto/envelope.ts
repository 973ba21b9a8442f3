import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { writeFileOnce } from '../common/files';
import type { SqlQuery } from '../database/tenant-transaction';

const FORMAT = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

function gcmEncrypt(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const iv = crypto.randomBytes(IV_BYTES);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

function gcmDecrypt(key: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  const iv = sealed.subarray(0, IV_BYTES);
  const tag = sealed.subarray(IV_BYTES, IV_BYTES + TAG_BYTES);
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
}

/**
 * Envelope encryption with AES-256-GCM: each organization has a random data key, stored only
 * wrapped by SECRETS_MASTER_KEY (organization_keys); values are sealed with the data key and
 * bound (as additional authenticated data) to their organization and purpose, so a ciphertext
 * moved to another row or tenant fails to open.
 */
export class Envelope {
  /**
   * `previousKeys`: master keys being rotated away from (SECRETS_MASTER_KEY_PREVIOUS): data keys
   * not rewrapped yet still open while `npm run rotate-master-key` runs; new keys use `masterKey`.
   */
  constructor(
    private readonly masterKey: Buffer,
    private readonly previousKeys: readonly Buffer[] = [],
  ) {
    for (const key of [masterKey, ...previousKeys]) if (key.length !== 32) throw new Error('the master key must be 32 bytes');
  }

  /** Unwraps a data key with the current master key, else with a previous one; `current` tells whether the current one did. */
  unwrap(organizationId: string, version: number, wrapped: Buffer): { key: Buffer; current: boolean } {
    const aad = Buffer.from(`org-key:${organizationId}:${version}`);
    for (const [i, master] of [this.masterKey, ...this.previousKeys].entries()) {
      try {
        return { key: gcmDecrypt(master, wrapped, aad), current: i === 0 };
      } catch {
        // not wrapped by this master key: try the next
      }
    }
    throw new Error('organization data key cannot be unwrapped by any configured master key');
  }

  /**
   * Seals a secret of the service itself (not of an organization: its JWT signing keys) directly
   * with the master key, bound to `purpose`; `openWithMaster` tries the previous master keys too.
   */
  sealWithMaster(purpose: string, plaintext: Buffer): Buffer {
    return gcmEncrypt(this.masterKey, plaintext, Buffer.from(`service:${purpose}`));
  }

  openWithMaster(purpose: string, sealed: Buffer): { plaintext: Buffer; current: boolean } {
    const aad = Buffer.from(`service:${purpose}`);
    for (const [i, master] of [this.masterKey, ...this.previousKeys].entries()) {
      try {
        return { plaintext: gcmDecrypt(master, sealed, aad), current: i === 0 };
      } catch {
        // not sealed by this master key: try the next
      }
    }
    throw new Error('service key cannot be opened by any configured master key');
  }

  /** Wraps a data key with the current master key. */
  wrap(organizationId: string, version: number, key: Buffer): Buffer {
    return gcmEncrypt(this.masterKey, key, Buffer.from(`org-key:${organizationId}:${version}`));
  }

  private async dataKey(query: SqlQuery, organizationId: string, version?: number): Promise<{ key: Buffer; version: number }> {
    const select = () =>
      query<{ version: number; wrapped_key: Buffer | Uint8Array }>(
        `SELECT version, wrapped_key FROM organization_keys WHERE organization_id = $1 ${version ? 'AND version = $2' : ''} ORDER BY version DESC LIMIT 1`,
        version ? [organizationId, version] : [organizationId],
      );
    let [row] = await select();
    if (!row && version === undefined) {
      const key = crypto.randomBytes(32);
      const wrapped = gcmEncrypt(this.masterKey, key, Buffer.from(`org-key:${organizationId}:1`));
      // Two requests may create the first key at once: the first insert wins, both use it.
      await query(`INSERT INTO organization_keys (organization_id, version, wrapped_key) VALUES ($1, 1, $2) ON CONFLICT DO NOTHING`, [organizationId, wrapped]);
      [row] = await select();
    }
    if (!row) throw new Error('organization data key missing');
    return { key: this.unwrap(organizationId, row.version, Buffer.from(row.wrapped_key)).key, version: row.version };
  }

  /** Encrypts a value for an organization; `purpose` names where it is stored (e.g. environment:<id>:cloudCredentials). */
  async seal(query: SqlQuery, organizationId: string, purpose: string, plaintext: string): Promise<Buffer> {
    const { key, version } = await this.dataKey(query, organizationId);
    const header = Buffer.alloc(5);
    header.writeUInt8(FORMAT, 0);
    header.writeUInt32BE(version, 1);
    return Buffer.concat([header, gcmEncrypt(key, Buffer.from(plaintext, 'utf8'), Buffer.from(`${organizationId}:${purpose}`))]);
  }

  async open(query: SqlQuery, organizationId: string, purpose: string, sealed: Buffer): Promise<string> {
    if (sealed.readUInt8(0) !== FORMAT) throw new Error('unknown ciphertext format');
    const { key } = await this.dataKey(query, organizationId, sealed.readUInt32BE(1));
    return gcmDecrypt(key, sealed.subarray(5), Buffer.from(`${organizationId}:${purpose}`)).toString('utf8');
  }
}

/**
 * SECRETS_MASTER_KEY, or outside production a key generated once and kept in DATA_DIR (the
 * caller warns). Returns the key and whether it came from the file.
 */
export function loadMasterKey(configured: Buffer | undefined, dataDir: string): { key: Buffer; generated: boolean } {
  if (configured) return { key: configured, generated: false };
  const file = path.join(dataDir, 'secrets-master.key');
  // Instances starting together keep the first key written.
  if (!fs.existsSync(file)) writeFileOnce(file, crypto.randomBytes(32).toString('base64'));
  const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte base64 key`);
  return { key, generated: true };
}
