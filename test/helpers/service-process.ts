import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Client } from 'pg';

/**
 * The built service in a child process, as an operator runs it (`node dist/src/main.js`): for
 * the tests of start-up, SIGTERM and database outages, which only a real process can show
 * (signals, exit codes, an error event nobody handles).
 */
const root = path.join(__dirname, '../..');

/**
 * Compiles the service with tsc (the `npm run build` configuration) into a directory of the
 * calling test file's own under `.test-build/`: test files run in parallel, and a process
 * started from `dist/` could read a file another file's build is rewriting.
 */
export function buildService(name: string): { dir: string; remove: () => void } {
  const dir = path.join(root, '.test-build', `${name}-${process.pid}`);
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', dir], { cwd: root, stdio: 'inherit' });
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export interface ServiceProcess {
  child: ChildProcess;
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  /** The banner's dev token for ADMIN_EMAIL. */
  adminToken: string;
  /** Everything the process printed so far. */
  output(): string;
  /** Settles when the process has exited, with its code or signal and when. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** SIGTERM, then SIGKILL if it is still running after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `node <build>/src/main.js` and waits (bounded) for the banner. */
export async function startService(build: string, env: Record<string, string>, timeoutMs = 60_000): Promise<ServiceProcess> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, PORT: '0', HOST: '127.0.0.1', NODE_ENV: 'development', LOG_LEVEL: 'info', ...env };
  delete childEnv.TEST_DATABASE_URL;
  if (!env.DATABASE_URL) delete childEnv.DATABASE_URL;
  const child = spawn(process.execPath, [path.join(build, 'src/main.js')], { cwd: root, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (chunk) => (out += chunk));
  child.stderr!.on('data', (chunk) => (out += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  const stop = async (graceMs = 25_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const match = /ready at http:\/\/localhost:(\d+)\/graphql[\s\S]*?\n(eyJ[\w.-]+)\n/.exec(out);
    if (match) {
      const port = Number(match[1]);
      return { child, url: `http://127.0.0.1:${port}`, port, adminToken: match[2]!, output: () => out, exited, stop };
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  await exited;
  throw new Error(`the service did not start within ${timeoutMs} ms:\n${out}`);
}

/** Whether a new TCP connection to the port is accepted (true), refused (false). */
export function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(2000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** The promise's value, or 'timed out' when it has not settled within `ms` (the timer is cleared either way). */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timed out'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<'timed out'>((resolve) => (timer = setTimeout(() => resolve('timed out'), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls until the condition holds, or throws after `timeoutMs`. */
export async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 10_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Sessions of the service ('tenant-service' application name) in a database, optionally only those waiting on a lock. */
export async function serviceSessions(client: Client, options: { waitingOnLock?: boolean } = {}): Promise<number> {
  const { rows } = await client.query(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tenant-service' ${options.waitingOnLock ? `AND wait_event_type = 'Lock'` : ''}`,
  );
  return rows[0].n as number;
}

export interface PostResult {
  status: number;
  body: { data?: any; errors?: Array<{ message: string; extensions?: Record<string, any> }> };
}

/** POST /graphql with a bearer token and a time bound; a hang past `timeoutMs` rejects. */
export async function post(url: string, token: string, query: string, variables: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<PostResult> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: res.status, body: (await res.json()) as PostResult['body'] };
}
