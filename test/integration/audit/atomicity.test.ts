import crypto from 'node:crypto';
import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll } from '../../helpers/db';
import { createOrganization, uniqueEmail } from '../../helpers/factories';

/**
 * SPEC §5 Audit: the change and its audit event are stored together or not at all; a failed
 * mutation writes none — also when it fails after its write started.
 */
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

/** Runs SQL on a connection that sees every row (checked: superuser or BYPASSRLS), so counts of zero mean something. */
const sql = <T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> => readAll<T>(app, text, params);
const totals = async () =>
  (await sql<{ orgs: number; events: number }>(`SELECT (SELECT count(*)::int FROM organizations) AS orgs, (SELECT count(*)::int FROM audit_events) AS events`))[0]!;

interface AuditNode { id: string; action: string; changes: unknown }
const READ = `query($id: ID!) { organization(id: $id) { name slug updatedAt auditEvents(first: 100) { nodes { id action changes } } } }`;
const read = async (id: string, as: string) => ok(await app.gql(READ, { id }, { as })).organization;
const COUNT = `{ me { organizations { totalCount } } }`;

describe('a mutation that fails after its write started leaves neither the change nor an audit event', () => {
  it('createOrganization whose explicit slug collides: CONFLICT, no organization, no event anywhere', async () => {
    const owner = uniqueEmail('collide');
    const mine = await createOrganization(app, owner);
    const taken = await createOrganization(app, uniqueEmail('holder'), { slug: `held-${Date.now()}` });
    const before = { mine: await read(mine.id, owner), count: ok(await app.gql(COUNT, {}, { as: owner })).me.organizations.totalCount, totals: await totals() };
    const name = `Collider ${crypto.randomUUID()}`;

    const result = await app.gql(`mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { id } }`, { input: { name, slug: taken.slug } }, { as: owner });
    expect(codes(result)).toEqual(['CONFLICT']);
    expect(result.errors![0]!.message).toBe(`Organization with slug '${taken.slug}' already exists`);
    expect(result.data).toBeNull();

    expect(await read(mine.id, owner)).toEqual(before.mine);
    expect(ok(await app.gql(COUNT, {}, { as: owner })).me.organizations.totalCount).toBe(before.count);
    expect(await totals()).toEqual(before.totals);
    expect(await sql(`SELECT id FROM organizations WHERE name = $1`, [name])).toEqual([]);
    expect(await sql(`SELECT id FROM audit_events WHERE resource_name = $1`, [name])).toEqual([]);
  });

  it('two mutations in one document: the first is kept with its one event, the failing second leaves nothing', async () => {
    const owner = uniqueEmail('pair');
    const org = await createOrganization(app, owner, { name: 'Pair Before' });
    const other = await createOrganization(app, uniqueEmail('other'), { slug: `taken-slug-${Date.now()}` });
    const before = await read(org.id, owner);
    const totalsBefore = await totals();

    const result = await app.gql(
      `mutation($id: ID!, $taken: String!) {
        a: updateOrganization(id: $id, input: { name: "Ok" }) { name }
        b: changeOrganizationSlug(id: $id, slug: $taken) { slug } }`,
      { id: org.id, taken: other.slug },
      { as: owner },
    );
    expect(codes(result)).toEqual(['CONFLICT']);
    expect(result.errors![0]!.path).toEqual(['b']);
    expect(result.errors![0]!.message).toBe(`Organization with slug '${other.slug}' already exists`);

    const after = await read(org.id, owner);
    expect(after).toMatchObject({ name: 'Ok', slug: before.slug });
    const newEvents = after.auditEvents.nodes.filter((n: AuditNode) => !before.auditEvents.nodes.some((b: AuditNode) => b.id === n.id));
    expect(newEvents.map((e: AuditNode) => [e.action, e.changes])).toEqual([
      ['organization.updated', { changedFields: ['name'], oldValues: { name: 'Pair Before' }, newValues: { name: 'Ok' } }],
    ]);
    expect(await totals()).toEqual({ orgs: totalsBefore.orgs, events: totalsBefore.events + 1 });
    expect(await sql(`SELECT count(*)::int AS n FROM audit_events WHERE action = 'organization.slug_changed'`)).toEqual([{ n: 0 }]);
  });

  describe('when the audit insert itself fails (database trigger)', () => {
    const marker = `boom-${crypto.randomBytes(6).toString('hex')}`;
    const fn = `test_audit_boom_${crypto.randomBytes(4).toString('hex')}`;
    beforeAll(async () => {
      await sql(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.resource_name = '${marker}' THEN RAISE EXCEPTION 'audit insert refused for %', NEW.resource_name; END IF;
          RETURN NEW;
        END $$`);
      await sql(`CREATE TRIGGER ${fn} BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION ${fn}()`);
    });
    afterAll(async () => {
      await sql(`DROP TRIGGER IF EXISTS ${fn} ON audit_events`);
      await sql(`DROP FUNCTION IF EXISTS ${fn}()`);
    });

    it('fails masked as INTERNAL_SERVER_ERROR with a request id and leaves the organization unchanged', async () => {
      const owner = uniqueEmail('boom');
      const org = await createOrganization(app, owner, { name: 'Steady Name' });
      const before = await read(org.id, owner);
      const totalsBefore = await totals();

      const result = await app.gql(`mutation($id: ID!, $name: String!) { updateOrganization(id: $id, input: { name: $name }) { name } }`, { id: org.id, name: marker }, { as: owner });
      expect(codes(result)).toEqual(['INTERNAL_SERVER_ERROR']);
      expect(result.data).toBeNull();
      const [error] = result.errors!;
      expect(error!.message).toBe('Internal server error');
      expect(typeof error!.extensions!.requestId).toBe('string');
      expect(error!.extensions!.requestId).toBe(result.headers.get('x-request-id'));
      const text = JSON.stringify(result.errors);
      for (const leak of [marker, 'audit_events', 'INSERT', 'refused', 'trigger', 'stacktrace', fn]) expect(text).not.toContain(leak);

      expect(await read(org.id, owner)).toEqual(before);
      expect(await totals()).toEqual(totalsBefore);
      expect(await sql(`SELECT count(*)::int AS n FROM organizations WHERE name = $1`, [marker])).toEqual([{ n: 0 }]);
    });

    it('does not break the request: an earlier mutation of the same document is still committed with its one event', async () => {
      const owner = uniqueEmail('ok-then-boom');
      const org = await createOrganization(app, owner, { name: 'Start' });
      const before = await read(org.id, owner);
      const totalsBefore = await totals();
      // Root mutation fields run in order; a failing non-null one ends the document, so the good one comes first.
      const result = await app.gql(
        `mutation($id: ID!, $bad: String!) {
          a: updateOrganization(id: $id, input: { description: "kept" }) { name }
          b: updateOrganization(id: $id, input: { name: $bad }) { name } }`,
        { id: org.id, bad: marker },
        { as: owner },
      );
      expect(codes(result)).toEqual(['INTERNAL_SERVER_ERROR']);
      expect(result.errors![0]!.path).toEqual(['b']);
      const after = await read(org.id, owner);
      expect(after.name).toBe('Start');
      expect(after.auditEvents.nodes.length).toBe(before.auditEvents.nodes.length + 1);
      expect(after.auditEvents.nodes[0]).toMatchObject({
        action: 'organization.updated',
        changes: { changedFields: ['description'], oldValues: { description: null }, newValues: { description: 'kept' } },
      });
      expect(await sql(`SELECT description FROM organizations WHERE id = $1`, [org.id])).toEqual([{ description: 'kept' }]);
      expect(await totals()).toEqual({ orgs: totalsBefore.orgs, events: totalsBefore.events + 1 });
    });
  });
});
