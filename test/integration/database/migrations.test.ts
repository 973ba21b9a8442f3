import { Database } from '../../../src/database/database';
import { MIGRATIONS } from '../../../src/database/migrations';
import { freshDatabaseUrl, usesRealPostgres } from '../../helpers/app';

describe('migrations', () => {
  it('bring up several instances starting at once (advisory lock) and run exactly once', async () => {
    const { url, drop } = await freshDatabaseUrl();
    try {
      // On the embedded database there is one process by nature; the instances then start in turn.
      const instances = usesRealPostgres()
        ? await Promise.all([Database.open({ url }), Database.open({ url }), Database.open({ url })])
        : [await Database.open({ url }), await Database.open({ url })];
      for (const db of instances) expect(await db.ready()).toBe(true);
      const rows = await instances[0]!.withConnection((runner) => runner.query(`SELECT name FROM migrations`));
      expect(rows).toEqual(MIGRATIONS.map((m) => ({ name: m.name })));
      for (const db of instances.reverse()) await db.close();
    } finally {
      await drop();
    }
  });
});
