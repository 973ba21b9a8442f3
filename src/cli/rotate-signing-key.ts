import { Client } from 'pg';
import { rotateSigningKey } from '../auth/service-tokens';
import { Envelope, loadMasterKey } from '../crypto/envelope';
import type { SqlQuery } from '../database/tenant-transaction';

/**
 * `npm run rotate-signing-key`: adds a new JWT signing key for the access tokens of exchanged API
 * keys and retires the current ones after the overlap (token lifetime + clock tolerance), during
 * which both verify and both are in the JWKS. For an immediate rotation (a suspected leak, a
 * policy); otherwise the service rotates by age by itself (README, "JWKS"). Connects with
 * DATABASE_URL and seals the new private key with SECRETS_MASTER_KEY.
 */
async function main(): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    process.stderr.write('DATABASE_URL must be set\n');
    process.exit(2);
  }
  const raw = process.env.SECRETS_MASTER_KEY;
  const master = raw ? Buffer.from(raw, 'base64') : loadMasterKey(undefined, process.env.DATA_DIR || './.data').key;
  if (master.length !== 32) {
    process.stderr.write('SECRETS_MASTER_KEY must be 32 bytes encoded in base64\n');
    process.exit(2);
  }
  const client = new Client({ connectionString: url, application_name: 'rotate-signing-key' });
  await client.connect();
  try {
    const query: SqlQuery = async (sql, params) => (await client.query(sql, params as unknown[])).rows as never;
    await client.query('BEGIN');
    try {
      await client.query(`SELECT app_set_scope('rotate-signing-key', NULL, NULL)`);
      const kid = await rotateSigningKey(query, new Envelope(master));
      await client.query('COMMIT');
      process.stdout.write(`new signing key ${kid}; the previous ones verify until their overlap ends\n`);
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    }
  } finally {
    await client.end();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`rotate-signing-key failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
