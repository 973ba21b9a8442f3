import { Client } from 'pg';
import type { SqlQuery } from '../database/tenant-transaction';
import { Envelope } from '../crypto/envelope';
import { signingKeyPurpose } from '../auth/service-tokens';
import { rotateMasterKey, rotateServiceKeys } from '../crypto/rotate-master-key';

/**
 * `npm run rotate-master-key`: rewraps every organization data key with SECRETS_MASTER_KEY (the
 * new key), opening them with SECRETS_MASTER_KEY_PREVIOUS (the old one). Safe to interrupt and
 * rerun. Connects with DATABASE_URL (the migration owner's, as the service uses); each data key is
 * rewrapped under the service's role, scoped to its organization. The service's JWT signing keys
 * (sealed by the master key itself) are resealed the same way.
 */
function key(name: string): Buffer {
  const raw = process.env[name];
  const decoded = raw && /^[A-Za-z0-9+/]+={0,2}$/.test(raw) ? Buffer.from(raw, 'base64') : Buffer.alloc(0);
  if (decoded.length !== 32) {
    process.stderr.write(`${name} must be set to 32 bytes encoded in base64\n`);
    process.exit(2);
  }
  return decoded;
}

async function main(): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    process.stderr.write('DATABASE_URL must be set (the embedded database is rotated by the service itself only on PostgreSQL)\n');
    process.exit(2);
  }
  const envelope = new Envelope(key('SECRETS_MASTER_KEY'), [key('SECRETS_MASTER_KEY_PREVIOUS')]);
  const client = new Client({ connectionString: url, application_name: 'rotate-master-key' });
  await client.connect();
  try {
    const query: SqlQuery = async (sql, params) => (await client.query(sql, params as unknown[])).rows as never;
    // As the migration owner (like the migrations): every organization; each is then rewrapped in a
    // unit of work of the service's role scoped to it (app_set_scope, as every transaction is).
    const organizationIds = (await client.query<{ id: string }>('SELECT id FROM organizations ORDER BY id')).rows.map((r) => r.id);
    const result = await rotateMasterKey(envelope, organizationIds, async (organizationId, fn) => {
      await client.query('BEGIN');
      try {
        await client.query(`SELECT app_set_scope('rotate-master-key', NULL, $1)`, [organizationId]);
        const value = await fn(query);
        await client.query('COMMIT');
        return value;
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      }
    });
    process.stdout.write(`rewrapped ${result.rewrapped} data keys; ${result.alreadyCurrent} already wrapped by the new master key\n`);
    const signing = await rotateServiceKeys(
      envelope,
      async (fn) => {
        await client.query('BEGIN');
        try {
          await client.query(`SELECT app_set_scope('rotate-master-key', NULL, NULL)`);
          const value = await fn(query);
          await client.query('COMMIT');
          return value;
        } catch (error) {
          await client.query('ROLLBACK');
          throw error;
        }
      },
      signingKeyPurpose,
    );
    process.stdout.write(`resealed ${signing.rewrapped} signing keys; ${signing.alreadyCurrent} already sealed by the new master key\n`);
  } finally {
    await client.end();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`rotate-master-key failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
