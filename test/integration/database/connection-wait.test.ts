import { Database } from '../../../src/database/database';
import { DatabaseUnavailableError } from '../../../src/common/errors';
import { freshDatabaseUrl, usesRealPostgres } from '../../helpers/app';

/** Settles with 'pending' when the promise has not settled by the time the marker resolves. */
const settledWithin = async <T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> => {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms)))]);
  } finally {
    clearTimeout(timer);
  }
};

describe('waiting for a connection', () => {
  let db: Database;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    const fresh = await freshDatabaseUrl();
    drop = fresh.drop;
    db = await Database.open({ url: fresh.url, poolMax: 2, connectionWaitMs: 300 });
  });
  afterAll(async () => {
    await db?.close();
    await drop?.();
  });

  it('keeps /readyz answering while requests hold every connection: readiness never queues behind them', async () => {
    const held = await Promise.all(Array.from({ length: usesRealPostgres() ? 2 : 1 }, () => db.lease()));
    try {
      expect(await settledWithin(db.ready(), 2500)).toBe(true);
    } finally {
      for (const lease of held) await lease.done();
    }
    expect(await db.ready()).toBe(true);
  });

  (usesRealPostgres() ? it.skip : it)('gives up on the embedded database after the wait limit instead of queueing forever (embedded only: the pool bounds its own wait)', async () => {
    const held = await db.lease();
    const started = Date.now();
    try {
      await expect(db.lease()).rejects.toBeInstanceOf(DatabaseUnavailableError);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    } finally {
      await held.done();
    }
    // The queue moved on: the next unit of work gets the connection at once.
    const next = await settledWithin(db.lease(), 1000);
    expect(next).not.toBe('pending');
    if (next !== 'pending') await next.done();
  });

  (usesRealPostgres() ? it.skip : it)('hands the embedded connection out in arrival order', async () => {
    const first = await db.lease();
    const order: number[] = [];
    const waiting = [1, 2, 3].map((n) => db.lease().then(async (lease) => {
      order.push(n);
      await lease.done();
    }));
    await first.done();
    await Promise.all(waiting);
    expect(order).toEqual([1, 2, 3]);
  });
});
