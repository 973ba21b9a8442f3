import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { Client } from 'pg';
import pino from 'pino';
import { Envelope } from '../../../src/crypto/envelope';
import { rotateMasterKey } from '../../../src/crypto/rotate-master-key';
import type { SqlQuery } from '../../../src/database/tenant-transaction';
import { secretPurpose } from '../../../src/modules/secret/secret.types';
import { codes, ok, startTestApp, type TestApp, usesRealPostgres } from '../../helpers/app';
import { addMember, createOrganization, type CreatedOrganization, uniqueEmail } from '../../helpers/factories';

/**
 * Secrets (SPEC §5): setSecret/deleteSecret/Organization.secrets/Workspace.secrets (metadata only,
 * org.secrets.manage), values sealed with the organization's data key, never in a response, a log,
 * an error, the audit trail or the database in clear; master-key rotation rewraps data keys only.
 */

// Reads the database directly (ciphertexts, pg_dump, rotation): PostgreSQL, as in CI.
const onPostgres = usesRealPostgres() ? describe : describe.skip;
const masterKey = crypto.randomBytes(32);
let logs = '';
let app: TestApp;
beforeAll(async () => {
  if (!usesRealPostgres()) return;
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs += chunk.toString('utf8');
      done();
    },
  });
  app = await startTestApp({ masterKey, logger: pino({ level: 'trace' }, sink) });
});
afterAll(async () => {
  await app?.close();
});

const SET = `mutation($org: ID!, $ws: ID, $key: String!, $value: String!) {
  setSecret(organizationId: $org, workspaceId: $ws, key: $key, value: $value) { key scope workspaceId version createdAt updatedAt updatedBy { email } } }`;
const DELETE = `mutation($org: ID!, $ws: ID, $key: String!) { deleteSecret(organizationId: $org, workspaceId: $ws, key: $key) }`;
const LIST = `query($id: ID!, $ws: ID!) {
  organization(id: $id) { secrets { key scope workspaceId version updatedBy { email } } }
  workspace(id: $ws) { secrets { key scope workspaceId version } } }`;

const VALUES = [`sk_live_${crypto.randomBytes(18).toString('hex')}`, `pw-${crypto.randomBytes(18).toString('hex')}`, `ws-${crypto.randomBytes(18).toString('hex')}`];

/** Every sealed value of an organization, opened with the given envelope (as the database owner, scoped to the organization). */
async function openAll(envelope: Envelope, organizationId: string): Promise<Record<string, string>> {
  const client = new Client({ connectionString: app.databaseUrl });
  await client.connect();
  try {
    const query: SqlQuery = async (sql, params) => (await client.query(sql, params)).rows as never;
    await client.query('BEGIN');
    await client.query(`SELECT app_set_scope('test', NULL, $1)`, [organizationId]);
    const rows = await query<{ workspace_id: string | null; key: string; sealed_value: Buffer }>(
      `SELECT workspace_id, key, sealed_value FROM secrets WHERE organization_id = $1 ORDER BY key`,
      [organizationId],
    );
    const out: Record<string, string> = {};
    for (const r of rows) out[`${r.workspace_id ? 'ws' : 'org'}:${r.key}`] = await envelope.open(query, organizationId, secretPurpose(r.workspace_id, r.key), r.sealed_value);
    await client.query('COMMIT');
    return out;
  } finally {
    await client.end();
  }
}

onPostgres('setSecret, deleteSecret, Organization.secrets, Workspace.secrets', () => {
  let owner: string;
  let org: CreatedOrganization;
  let responses = '';
  beforeAll(async () => {
    owner = uniqueEmail('secrets');
    org = await createOrganization(app, owner);
  });

  it('sets organization and workspace secrets, overwrites bump the version, lists metadata only', async () => {
    const a = await app.gql(SET, { org: org.id, key: 'STRIPE_KEY', value: VALUES[0] }, { as: owner });
    const b = await app.gql(SET, { org: org.id, key: 'DB_PASSWORD', value: 'first' }, { as: owner });
    const c = await app.gql(SET, { org: org.id, key: 'DB_PASSWORD', value: VALUES[1] }, { as: owner });
    const d = await app.gql(SET, { org: org.id, ws: org.defaultWorkspaceId, key: 'DB_PASSWORD', value: VALUES[2] }, { as: owner });
    responses += JSON.stringify([a, b, c, d]);
    expect(ok(a).setSecret).toMatchObject({ key: 'STRIPE_KEY', scope: 'ORGANIZATION', workspaceId: null, version: 1, updatedBy: { email: owner } });
    expect(ok(c).setSecret).toMatchObject({ key: 'DB_PASSWORD', scope: 'ORGANIZATION', version: 2 });
    expect(ok(d).setSecret).toMatchObject({ key: 'DB_PASSWORD', scope: 'WORKSPACE', workspaceId: org.defaultWorkspaceId, version: 1 });

    const list = await app.gql(LIST, { id: org.id, ws: org.defaultWorkspaceId }, { as: owner });
    responses += JSON.stringify(list);
    expect(ok(list).organization.secrets).toEqual([
      { key: 'DB_PASSWORD', scope: 'ORGANIZATION', workspaceId: null, version: 2, updatedBy: { email: owner } },
      { key: 'STRIPE_KEY', scope: 'ORGANIZATION', workspaceId: null, version: 1, updatedBy: { email: owner } },
    ]);
    expect(ok(list).workspace.secrets).toEqual([{ key: 'DB_PASSWORD', scope: 'WORKSPACE', workspaceId: org.defaultWorkspaceId, version: 1 }]);
    // The stored ciphertexts open to exactly what was set (with the service's data key).
    expect(await openAll(app.envelope, org.id)).toEqual({ 'org:DB_PASSWORD': VALUES[1], 'org:STRIPE_KEY': VALUES[0], 'ws:DB_PASSWORD': VALUES[2] });
  });

  it('refuses invalid keys and oversized values without echoing the value', async () => {
    const badKey = await app.gql(SET, { org: org.id, key: 'lower-case', value: VALUES[0] }, { as: owner });
    const big = `${VALUES[1]}${'x'.repeat(64 * 1024)}`;
    const tooBig = await app.gql(SET, { org: org.id, key: 'BIG', value: big }, { as: owner });
    responses += JSON.stringify([badKey, tooBig]);
    expect(codes(badKey)).toEqual(['BAD_USER_INPUT']);
    expect(codes(tooBig)).toEqual(['BAD_USER_INPUT']);
    expect(tooBig.errors?.[0]?.extensions?.field).toBe('value');
    // A coercion error of the value (not a string) names the problem, not the value.
    const coerced = await app.gql(SET, { org: org.id, key: 'NUM', value: { nested: VALUES[0] } }, { as: owner });
    responses += JSON.stringify(coerced);
    expect(codes(coerced)).toEqual(['BAD_USER_INPUT']);
  });

  it('needs org.secrets.manage: a MEMBER is FORBIDDEN, a stranger NOT_FOUND, secrets fields null with FORBIDDEN', async () => {
    const member = uniqueEmail('secrets-member');
    await addMember(app, org.id, member, 'member');
    const stranger = uniqueEmail('secrets-stranger');
    expect(codes(await app.gql(SET, { org: org.id, key: 'X', value: VALUES[0] }, { as: member }))).toEqual(['FORBIDDEN']);
    expect(codes(await app.gql(SET, { org: org.id, key: 'X', value: VALUES[0] }, { as: stranger }))).toEqual(['NOT_FOUND']);
    expect(codes(await app.gql(DELETE, { org: org.id, key: 'STRIPE_KEY' }, { as: member }))).toEqual(['FORBIDDEN']);
    const list = await app.gql(LIST, { id: org.id, ws: org.defaultWorkspaceId }, { as: member });
    expect(list.data?.organization?.secrets).toBeNull();
    expect(list.data?.workspace?.secrets).toBeNull();
    expect(codes(list)).toEqual(['FORBIDDEN', 'FORBIDDEN']);
  });

  it("a workspace of another organization is NOT_FOUND", async () => {
    const other = await createOrganization(app, owner);
    expect(codes(await app.gql(SET, { org: org.id, ws: other.defaultWorkspaceId, key: 'X', value: VALUES[0] }, { as: owner }))).toEqual(['NOT_FOUND']);
  });

  it('deletes a secret (NOT_FOUND the second time), audited as secret.set|deleted without values', async () => {
    expect(ok(await app.gql(DELETE, { org: org.id, key: 'STRIPE_KEY' }, { as: owner })).deleteSecret).toBe(true);
    expect(codes(await app.gql(DELETE, { org: org.id, key: 'STRIPE_KEY' }, { as: owner }))).toEqual(['NOT_FOUND']);
    const audit = ok(
      await app.gql(`query($id: ID!) { organization(id: $id) { auditEvents(first: 100) { nodes { action resourceId changes metadata } } } }`, { id: org.id }, { as: owner }),
    ).organization.auditEvents.nodes as Array<{ action: string; resourceId: string }>;
    const secretEvents = audit.filter((e) => e.action.startsWith('secret'));
    expect(secretEvents.map((e) => [e.action, e.resourceId])).toEqual([
      ['secret.deleted', 'STRIPE_KEY'],
      ['secret.set', 'DB_PASSWORD'],
      ['secret.set', 'DB_PASSWORD'],
      ['secret.set', 'DB_PASSWORD'],
      ['secret.set', 'STRIPE_KEY'],
    ]);
    responses += JSON.stringify(audit);
  });

  it('no value appears in any response, error, audit event or log line', () => {
    expect(logs.length).toBeGreaterThan(0);
    for (const value of VALUES) {
      expect(responses).not.toContain(value);
      expect(logs).not.toContain(value);
    }
  });

  it('no value appears in clear in a pg_dump of the database', () => {
    const dump = execFileSync('/usr/bin/pg_dump', ['--data-only', app.databaseUrl!], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: 60_000 });
    expect(dump).toContain('DB_PASSWORD');
    for (const value of [...VALUES, 'first']) expect(dump).not.toContain(value);
  });

  it('rotating the master key rewraps every data key, survives an interruption, and values read back unchanged', async () => {
    // A second organization with a data key of its own (and a secret under it).
    const second = await createOrganization(app, owner);
    const secondValue = `second-${crypto.randomBytes(18).toString('hex')}`;
    ok(await app.gql(SET, { org: second.id, key: 'TOKEN', value: secondValue }, { as: owner }));
    const newKey = crypto.randomBytes(32);
    const rotating = new Envelope(newKey, [masterKey]);
    const client = new Client({ connectionString: app.databaseUrl });
    await client.connect();
    try {
      const query: SqlQuery = async (sql, params) => (await client.query(sql, params)).rows as never;
      const orgIds = (await client.query<{ id: string }>('SELECT id FROM organizations ORDER BY id')).rows.map((r) => r.id);
      await client.query('BEGIN');
      await client.query(`SELECT app_set_scope('test', NULL, $1)`, [orgIds.join(',')]);
      const before = (await client.query<{ organization_id: string; wrapped_key: Buffer }>('SELECT organization_id, wrapped_key FROM organization_keys ORDER BY 1')).rows;
      const sealedBefore = (await client.query<{ sealed_value: Buffer }>('SELECT sealed_value FROM secrets ORDER BY organization_id, key, workspace_id')).rows;
      await client.query('COMMIT');
      expect(orgIds).toEqual(expect.arrayContaining([org.id, second.id]));
      // The organizations with secrets have a data key (others may have none: they are skipped).
      expect(before.map((r) => r.organization_id)).toEqual(expect.arrayContaining([org.id, second.id]));
      const transaction = async <T>(organizationId: string, fn: (q: SqlQuery) => Promise<T>): Promise<T> => {
        await client.query('BEGIN');
        try {
          await client.query(`SELECT app_set_scope('test', NULL, $1)`, [organizationId]);
          const v = await fn(query);
          await client.query('COMMIT');
          return v;
        } catch (e) {
          await client.query('ROLLBACK');
          throw e;
        }
      };
      // Interrupted right after the first data key was rewrapped (and committed): the rest are not.
      const interrupt = () => {
        throw new Error('interrupted');
      };
      await expect(rotateMasterKey(rotating, orgIds, transaction, interrupt)).rejects.toThrow('interrupted');
      const rerun = await rotateMasterKey(rotating, orgIds, transaction);
      expect(rerun.rewrapped + rerun.alreadyCurrent).toBe(before.length);
      expect(rerun.alreadyCurrent).toBe(1);
      expect(await rotateMasterKey(rotating, orgIds, transaction)).toEqual({ rewrapped: 0, alreadyCurrent: before.length });

      await client.query('BEGIN');
      await client.query(`SELECT app_set_scope('test', NULL, $1)`, [orgIds.join(',')]);
      const after = (await client.query<{ wrapped_key: Buffer }>('SELECT wrapped_key FROM organization_keys ORDER BY organization_id')).rows;
      const sealedAfter = (await client.query<{ sealed_value: Buffer }>('SELECT sealed_value FROM secrets ORDER BY organization_id, key, workspace_id')).rows;
      await client.query('COMMIT');
      // Every wrapped key changed; no sealed value was touched.
      after.forEach((r, i) => expect(r.wrapped_key.equals(before[i]!.wrapped_key)).toBe(false));
      expect(sealedAfter).toEqual(sealedBefore);
    } finally {
      await client.end();
    }
    // Only the new master key opens them now; the old one alone no longer does.
    expect(await openAll(new Envelope(newKey), org.id)).toEqual({ 'org:DB_PASSWORD': VALUES[1], 'ws:DB_PASSWORD': VALUES[2] });
    expect(await openAll(new Envelope(newKey), second.id)).toEqual({ 'org:TOKEN': secondValue });
    await expect(openAll(new Envelope(masterKey), org.id)).rejects.toThrow();
    // During the rotation an envelope holding both keys opens every value, rewrapped or not.
    expect(await openAll(new Envelope(newKey, [masterKey]), second.id)).toEqual({ 'org:TOKEN': secondValue });
  });
});
