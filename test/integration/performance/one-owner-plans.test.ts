import pino from 'pino';
import { RequestContext } from '../../../src/context';
import { ok, startTestApp, type TestApp, usesRealPostgres } from '../../helpers/app';
import { createOrganization, uniqueEmail } from '../../helpers/factories';

/**
 * A page of one organization (its dashboard: members, workspaces, their environments) is asked
 * with `organization_id = $1`, not `= ANY('{…}')`: PostgreSQL's plan cache then keeps a generic
 * plan for it, planned once per connection, instead of planning the statement again on every
 * call (README "Performance"). PostgreSQL only: PGlite runs statements unprepared.
 */
const onPostgres = usesRealPostgres() ? describe : describe.skip;

onPostgres('pages of one organization keep one plan per connection (PostgreSQL only)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app?.close();
  });

  it('the member page, the workspace page and the environments of its workspaces get generic plans after a few calls, and the same rows', async () => {
    const owner = uniqueEmail('plans');
    const org = await createOrganization(app, owner);
    ok(
      await app.gql(`mutation($w: ID!) { createEnvironment(workspaceId: $w, input: { name: "Dev", tier: DEV, resources: { cpu: 0.5, ramMb: 256, diskGb: 1 } }) { id } }`, { w: org.defaultWorkspaceId }, { as: owner }),
    );
    const ctx = RequestContext.forSystem({ config: app.config, db: app.db, envelope: app.envelope, logger: pino({ level: 'silent' }) }, org.id, 'test:plans');
    try {
      const pages: string[] = [];
      for (let i = 0; i < 8; i += 1) {
        ctx.loaders.clearAll();
        const members = await ctx.loaders.memberPage.load({ ownerId: org.id, limit: 21, after: null, filter: { roleKey: null, pattern: null, roles: true } });
        const workspaces = await ctx.loaders.workspacePage.load({ ownerId: org.id, limit: 21, after: null, filter: { mode: 'all', environments: null } });
        const environments = await ctx.loaders.environmentsByWorkspace.load({ organizationId: org.id, workspaceId: workspaces[0]!.id });
        // The lean page with the lean environments along (a nested list's look-ahead): they come primed.
        const lean = await ctx.loaders.leanWorkspacePage.load({ ownerId: org.id, limit: 21, after: null, filter: { mode: 'all', environments: 'lean' } });
        const along = await ctx.loaders.leanEnvironmentsByWorkspace.load({ organizationId: org.id, workspaceId: lean[0]!.id });
        pages.push(
          JSON.stringify([members.map((m) => m.userId), workspaces.map((w) => w.id), environments.map((e) => e.id), lean.map((w) => w.id), along.map((e) => [e.id, e.name])]),
        );
      }
      expect(new Set(pages).size).toBe(1);
      expect(JSON.parse(pages[0]!).map((ids: string[]) => ids.length)).toEqual([1, 1, 1, 1, 1]);
      expect(JSON.parse(pages[0]!)[4]).toEqual([[JSON.parse(pages[0]!)[2][0], 'Dev']]);
      const plans = await ctx.tx.query<{ statement: string; generic_plans: string; custom_plans: string }>(
        `SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements WHERE name LIKE 'ts\\_%'`,
      );
      const statements: Array<[string, (sql: string) => boolean]> = [
        ['member page', (sql) => sql.startsWith('WITH page AS MATERIALIZED') && sql.includes('FROM memberships m')],
        ['workspace page', (sql) => sql.startsWith('SELECT ranked.* FROM') && sql.includes('FROM workspaces w')],
        ['environments', (sql) => sql.includes('FROM environments JOIN unnest') && sql.includes('execution_backend')],
        ['workspace page with its environments', (sql) => sql.includes('AS environments_along') && sql.includes('FROM workspaces w')],
      ];
      for (const [name, matches] of statements) {
        const found = plans.filter((p) => matches(p.statement));
        expect({ name, found: found.length }).toEqual({ name, found: 1 });
        // At most the plan cache's five trial custom plans, then the generic one.
        expect({ name, generic: Number(found[0]!.generic_plans) > 0, custom: Number(found[0]!.custom_plans) <= 5 }).toEqual({ name, generic: true, custom: true });
      }
    } finally {
      await ctx.tx.finish();
    }
  });
});
