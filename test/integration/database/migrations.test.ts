import { Database } from '../../../src/database/database';
import { MIGRATIONS } from '../../../src/database/migrations';
import { freshDatabaseUrl, usesRealPostgres } from '../../helpers/app';
import { readAll } from '../../helpers/db';

const INSTANCES = 8;
const ROUNDS = 3;

// PostgreSQL only. The advisory lock matters when several processes migrate one database. An
// embedded PGlite is one in-memory database per Database instance (and has a single process by
// nature), so there the instances could never meet and this test could not fail. CI runs it
// against PostgreSQL (TEST_DATABASE_URL).
const onPostgres = usesRealPostgres() ? describe : describe.skip;

onPostgres('migrations on PostgreSQL (bites only there: instances racing on one database)', () => {
  it(`bring up ${INSTANCES} instances started at once on one fresh database, ${ROUNDS} times: all come up, every migration recorded exactly once`, async () => {
    for (let round = 1; round <= ROUNDS; round += 1) {
      const { url, drop } = await freshDatabaseUrl();
      const opened: Database[] = [];
      try {
        const results = await Promise.allSettled(Array.from({ length: INSTANCES }, () => Database.open({ url, poolMax: 2 })));
        for (const r of results) if (r.status === 'fulfilled') opened.push(r.value);
        const failures = results.flatMap((r) => (r.status === 'rejected' ? [String((r.reason as Error)?.message ?? r.reason)] : []));
        expect({ round, failures }).toEqual({ round, failures: [] });
        expect(opened).toHaveLength(INSTANCES);
        for (const db of opened) expect(await db.ready()).toBe(true);
        const recorded = await readAll<{ name: string; n: number }>(opened[0]!, `SELECT name, count(*)::int AS n FROM migrations GROUP BY name ORDER BY name`);
        const expected = MIGRATIONS.map((m) => ({ name: new m().name!, n: 1 })).sort((a, b) => a.name.localeCompare(b.name));
        expect({ round, recorded }).toEqual({ round, recorded: expected });
      } finally {
        for (const db of opened.reverse()) await db.close();
        await drop();
      }
    }
  });
});
