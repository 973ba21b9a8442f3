import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { freshDatabaseUrl, usesRealPostgres } from '../../helpers/app';
import { buildService, post, type ServiceProcess, startService } from '../../helpers/service-process';

/**
 * Several instances on one database (SPEC §1, §7): the signing keys live in the database, so a
 * token exchanged on one instance verifies on the other; secrets resolved by a key read back on
 * either, and still after `npm run rotate-master-key` (which reseals the signing keys too) once
 * the instances run with the new master key only.
 */
const onPostgres = usesRealPostgres() ? describe : describe.skip;
jest.setTimeout(240_000);

let build: { dir: string; remove: () => void } | undefined;
let database: { url: string | undefined; drop: () => Promise<void> } | undefined;
const running: ServiceProcess[] = [];
const dataDirs: string[] = [];
const oldMaster = crypto.randomBytes(32).toString('base64');
const newMaster = crypto.randomBytes(32).toString('base64');

async function instance(env: Record<string, string>): Promise<ServiceProcess> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenant-apikey-instance-'));
  dataDirs.push(dataDir);
  const service = await startService(build!.dir, { DATABASE_URL: database!.url!, DATA_DIR: dataDir, LOG_LEVEL: 'warn', JOB_INTERVAL_SECONDS: '3600', ...env });
  running.push(service);
  return service;
}

const ok = (result: { body: { data?: any; errors?: unknown[] } }) => {
  if (result.body.errors?.length) throw new Error(JSON.stringify(result.body.errors));
  return result.body.data;
};

async function graphql(url: string, query: string, variables: Record<string, unknown> = {}, token?: string) {
  if (token) return post(url, token, query, variables);
  const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  return { status: res.status, body: (await res.json()) as { data?: any; errors?: any[] } };
}

beforeAll(async () => {
  if (!usesRealPostgres()) return;
  build = buildService('api-key-instances');
  database = await freshDatabaseUrl();
});
afterAll(async () => {
  for (const s of running) await s.stop();
  await database?.drop();
  build?.remove();
  for (const d of dataDirs) fs.rmSync(d, { recursive: true, force: true });
});

onPostgres('two instances on one database', () => {
  it('verify each other’s exchanged tokens, resolve the same secrets, and after a master-key rotation still read them back', async () => {
    const a = await instance({ SECRETS_MASTER_KEY: oldMaster });
    const b = await instance({ SECRETS_MASTER_KEY: oldMaster });
    const orgs = ok(await post(a.url, a.adminToken, `{ organizations(first: 5) { nodes { id slug workspaces { nodes { id } } } } }`));
    const org = orgs.organizations.nodes.find((o: { slug: string }) => o.slug === 'default');
    const workspaceId = org.workspaces.nodes[0].id as string;
    const set = `mutation($org: ID!, $ws: ID, $key: String!, $value: String!) { setSecret(organizationId: $org, workspaceId: $ws, key: $key, value: $value) { key } }`;
    ok(await post(a.url, a.adminToken, set, { org: org.id, key: 'DB_URL', value: 'postgres://org-level' }));
    ok(await post(a.url, a.adminToken, set, { org: org.id, key: 'REGION', value: 'eu-west-1' }));
    ok(await post(a.url, a.adminToken, set, { org: org.id, ws: workspaceId, key: 'DB_URL', value: 'postgres://workspace-level' }));
    const created = ok(await post(a.url, a.adminToken, `mutation($org: ID!) { createApiKey(organizationId: $org, input: { name: "deployer", scopes: ["org.view", "workspace.view", "secrets.read"] }) { secret } }`, { org: org.id }));
    const secret = created.createApiKey.secret as string;

    const exchange = `mutation($key: String!) { exchangeApiKey(apiKey: $key) { accessToken } }`;
    const tokenFromA = ok(await graphql(a.url, exchange, { key: secret })).exchangeApiKey.accessToken as string;
    const tokenFromB = ok(await graphql(b.url, exchange, { key: secret })).exchangeApiKey.accessToken as string;
    const resolve = `query($ws: ID!) { resolveSecrets(workspaceId: $ws) { key value scope } }`;
    const expected = [
      { key: 'DB_URL', value: 'postgres://workspace-level', scope: 'WORKSPACE' },
      { key: 'REGION', value: 'eu-west-1', scope: 'ORGANIZATION' },
    ];
    for (const [service, token] of [[b, tokenFromA], [a, tokenFromB], [a, tokenFromA], [b, secret]] as const) {
      expect(ok(await post(service.url, token, resolve, { ws: workspaceId })).resolveSecrets).toEqual(expected);
    }
    await a.stop();
    await b.stop();

    execFileSync(process.execPath, [path.join(build!.dir, 'src/cli/rotate-master-key.js')], {
      env: { ...process.env, DATABASE_URL: database!.url!, SECRETS_MASTER_KEY: newMaster, SECRETS_MASTER_KEY_PREVIOUS: oldMaster },
      encoding: 'utf8',
    });
    const c = await instance({ SECRETS_MASTER_KEY: newMaster });
    expect(ok(await post(c.url, secret, resolve, { ws: workspaceId })).resolveSecrets).toEqual(expected);
    // The signing key was resealed: the new instance still signs, and an old token still verifies.
    const tokenFromC = ok(await graphql(c.url, exchange, { key: secret })).exchangeApiKey.accessToken as string;
    expect(ok(await post(c.url, tokenFromC, resolve, { ws: workspaceId })).resolveSecrets).toEqual(expected);
    expect(ok(await post(c.url, tokenFromA, resolve, { ws: workspaceId })).resolveSecrets).toEqual(expected);

    // Neither the key nor a secret value is in the database in clear.
    const dump = execFileSync('/usr/bin/pg_dump', ['--data-only', database!.url!], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: 60_000 });
    for (const clear of [secret, secret.slice(12), 'postgres://workspace-level', 'eu-west-1']) expect(dump).not.toContain(clear);

    const client = new Client({ connectionString: database!.url });
    await client.connect();
    try {
      const { rows } = await client.query(`SELECT metadata::text AS metadata, actor_type, actor_name FROM audit_events WHERE action = 'secrets.resolved'`);
      expect(rows.length).toBe(7);
      for (const row of rows) {
        expect(row).toMatchObject({ actor_type: 'API_KEY', actor_name: 'deployer' });
        expect(JSON.parse(row.metadata).keys).toEqual(['DB_URL', 'REGION']);
        expect(row.metadata).not.toContain('postgres://');
        expect(row.metadata).not.toContain('eu-west-1');
      }
    } finally {
      await client.end();
    }
  });
});
