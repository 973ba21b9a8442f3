import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * The built service as a user runs it (`npm start`): no DATABASE_URL, so the embedded PGlite
 * under DATA_DIR; then a second start on the same DATA_DIR reuses the data.
 */
const root = path.join(__dirname, '../..');
let dataDir: string;

interface Running {
  child: ChildProcess;
  url: string;
  adminToken: string;
  /** Everything the process printed so far (shown when a step fails). */
  output: () => string;
}


const execFileAsync = promisify(execFile);

async function start(): Promise<Running> {
  const env = { ...process.env, PORT: '0', DATA_DIR: dataDir, NODE_ENV: 'development', LOG_LEVEL: 'warn' } as NodeJS.ProcessEnv;
  delete env.DATABASE_URL;
  delete env.TEST_DATABASE_URL;
  const child = spawn(process.execPath, ['dist/src/main.js'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (chunk) => (out += chunk));
  child.stderr!.on('data', (chunk) => (out += chunk));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const match = /ready at (http:\/\/localhost:\d+)\/graphql[\s\S]*?\n(eyJ[\w.-]+)\n/.exec(out);
    if (match) return { child, url: match[1]!, adminToken: match[2]!, output: () => out };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`service did not start:\n${out}`);
}

async function stop(running: Running): Promise<void> {
  const exited = new Promise((resolve) => running.child.once('exit', resolve));
  running.child.kill('SIGTERM');
  await exited;
}

async function gql(url: string, token: string, query: string, variables: Record<string, unknown> = {}) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  }).catch((error: unknown) => {
    throw new Error(`${query.slice(0, 60)}…: ${String(error)} (${String((error as { cause?: unknown }).cause)})`, { cause: error });
  });
  return (await res.json()) as { data?: any; errors?: any[] };
}

/**
 * Mints a token with the CLI, asynchronously: a synchronous child process would block the event
 * loop long enough (on a loaded machine) for the server to close an idle keep-alive connection
 * unnoticed, and the next request would be sent on a closed socket.
 */
const token = async (email: string): Promise<string> =>
  (await execFileAsync(process.execPath, ['dist/src/cli/token.js', '--email', email], { cwd: root, env: { ...process.env, DATA_DIR: dataDir } })).stdout.trim();

beforeAll(() => {
  execFileSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: 'inherit' });
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenant-e2e-'));
}, 180_000);

afterAll(() => {
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('the service on the embedded database', () => {
  it('starts, serves me with the printed dev token, isolates concurrent tenants, and keeps its data across restarts', async () => {
    const first = await start();
    try {
      expect((await fetch(`${first.url}/readyz`)).status).toBe(200);
      const me = await gql(first.url, first.adminToken, `{ me { user { email } organizations { nodes { slug viewerRole { key } } } } }`);
      expect(me.errors).toBeUndefined();
      expect(me.data.me).toEqual({ user: { email: 'admin@localhost' }, organizations: { nodes: [{ slug: 'default', viewerRole: { key: 'owner' } }] } });

      // 20 users, each with an organization of their own, then 20 concurrent reads: PGlite has a
      // single connection, so only the transaction queue keeps their settings and rows apart.
      const users = await Promise.all(Array.from({ length: 20 }, async (_, i) => ({ email: `tenant${i}@example.com`, token: await token(`tenant${i}@example.com`) })));
      const orgIds: string[] = [];
      for (const [i, u] of users.entries()) {
        const created = await gql(first.url, u.token, `mutation($n: String!) { createOrganization(input: { name: $n }) { id } }`, { n: `Tenant ${i}` });
        expect(created.errors).toBeUndefined();
        orgIds.push(created.data.createOrganization.id);
      }
      const reads = await Promise.all(
        users.map((u, i) =>
          gql(first.url, u.token, `query($other: ID!) { me { organizations { nodes { id } } } organization(id: $other) { id } }`, {
            other: orgIds[(i + 1) % orgIds.length],
          }),
        ),
      );
      reads.forEach((r, i) => {
        expect(r.data.me.organizations.nodes).toEqual([{ id: orgIds[i] }]);
        expect(r.data.organization).toBeNull();
        expect(r.errors?.map((e) => e.extensions.code)).toEqual(['NOT_FOUND']);
      });
    } catch (error) {
      throw new Error(`${String(error)}\n--- service output ---\n${first.output()}`, { cause: error });
    } finally {
      await stop(first);
    }

    const second = await start();
    try {
      const again = await gql(second.url, await token('tenant3@example.com'), `{ me { organizations { nodes { name } } } }`);
      expect(again.data.me.organizations.nodes).toEqual([{ name: 'Tenant 3' }]);
    } finally {
      await stop(second);
    }
  }, 180_000);
});
