import { randomUUID } from 'node:crypto';
import { Database } from '../../../src/database/database';
import { TenantTransaction } from '../../../src/database/tenant-transaction';
import { freshDatabaseUrl } from '../../helpers/app';

let db: Database;
let drop: () => Promise<void>;
const org = randomUUID();

beforeAll(async () => {
  const fresh = await freshDatabaseUrl();
  drop = fresh.drop;
  db = await Database.open({ url: fresh.url });
});
afterAll(async () => {
  await db?.close();
  await drop?.();
});

const scoped = () => new TenantTransaction(db, randomUUID(), (query, tx) => tx.setScope(query, null, [org]));
const exists = async () => {
  const tx = scoped();
  const rows = await tx.query(`SELECT 1 FROM organizations WHERE id = $1`, [org]);
  await tx.finish();
  return rows.length === 1;
};

describe('the request transaction', () => {
  it('refuses to report success when a statement outside any savepoint aborted it after a mutation wrote', async () => {
    const tx = scoped();
    await tx.savepoint(() => tx.query(`INSERT INTO organizations (id, name, slug) VALUES ($1, 'Lost', $2)`, [org, `lost-${Date.now()}`]));
    await expect(tx.query(`SELECT 1 / 0`)).rejects.toThrow();
    await expect(tx.finish()).rejects.toThrow(/aborted after a mutation wrote/);
    expect(await exists()).toBe(false);
  });

  it('keeps a mutation when a failure inside a later savepoint was rolled back to it', async () => {
    const tx = scoped();
    await tx.savepoint(() => tx.query(`INSERT INTO organizations (id, name, slug) VALUES ($1, 'Kept', $2)`, [org, `kept-${Date.now()}`]));
    await expect(tx.savepoint(() => tx.query(`SELECT 1 / 0`))).rejects.toThrow();
    await tx.finish();
    expect(await exists()).toBe(true);
  });

  it('ends a read-only request quietly when a read statement failed', async () => {
    const tx = scoped();
    await expect(tx.query(`SELECT 1 / 0`)).rejects.toThrow();
    await expect(tx.finish()).resolves.toBeUndefined();
  });
});
