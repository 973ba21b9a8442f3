import { randomUUID } from 'node:crypto';
import { Database } from '../../../src/database/database';
import { systemPrincipal } from '../../../src/auth/principal';
import { TenantTransaction, TransactionEndedError } from '../../../src/database/tenant-transaction';
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

const scoped = (id = org) => new TenantTransaction(db, systemPrincipal(id, 'test'), randomUUID());
const exists = async (id = org) => {
  const tx = scoped(id);
  const rows = await tx.query(`SELECT 1 FROM organizations WHERE id = $1`, [id]);
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

  it('refuses a statement sent after the end at once, and never runs it outside the transaction', async () => {
    const late = randomUUID();
    const tx = scoped(late);
    await tx.query(`SELECT 1`);
    const finishing = tx.finish();
    // Sent while COMMIT is under way (a resolver still running after the response was decided).
    await expect(tx.query(`INSERT INTO organizations (id, name, slug) VALUES ($1, 'Late', $2)`, [late, `late-${Date.now()}`])).rejects.toThrow(TransactionEndedError);
    await finishing;
    await expect(tx.query(`SELECT 1`)).rejects.toThrow(TransactionEndedError);
    expect(await exists(late)).toBe(false);
  });

  it('runs statements queued before the end ahead of the COMMIT', async () => {
    const queued = randomUUID();
    const tx = scoped(queued);
    const insert = tx.query(`INSERT INTO organizations (id, name, slug) VALUES ($1, 'Queued', $2)`, [queued, `queued-${Date.now()}`]);
    await tx.finish();
    await expect(insert).resolves.toEqual([]);
    expect(await exists(queued)).toBe(true);
  });

  it('rolls the in-memory scope back with a failed savepoint, as the database does with its settings', async () => {
    const other = randomUUID();
    const tx = new TenantTransaction(db, { kind: 'anonymous' }, randomUUID());
    const session = await tx.open();
    await expect(
      tx.savepoint(async () => {
        await tx.widen(other, 'owner');
        expect(session.roles.get(other)).toBe('owner');
        expect(await tx.query(`SELECT current_setting('app.org_ids') AS s`)).toEqual([{ s: other }]);
        throw new Error('the mutation failed');
      }),
    ).rejects.toThrow('the mutation failed');
    expect(session.roles.has(other)).toBe(false);
    expect(await tx.query(`SELECT current_setting('app.org_ids') AS s`)).toEqual([{ s: '' }]);
    await tx.finish();
  });

  it('keeps the scope across a mid-unit commit (a mutation commits before its selection set resolves)', async () => {
    const tx = new TenantTransaction(db, { kind: 'anonymous' }, randomUUID());
    await tx.open();
    const id = randomUUID();
    await tx.widen(id, 'owner');
    await tx.commit();
    expect(await tx.query(`SELECT current_setting('app.org_ids') AS s, current_user AS u`)).toEqual([{ s: id, u: 'tenant_service_app' }]);
    await tx.finish();
  });
});
