import { type ChildProcess, execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freshDatabaseUrl, usesRealPostgres } from '../../helpers/app';

/**
 * OpenTelemetry as an operator meets it: the built service (instrumentations hook `require`,
 * which Jest's module registry bypasses, so it runs in a child process) exports its spans over
 * OTLP/HTTP (JSON) to a receiver this test runs. One request with a gateway's `traceparent`
 * gives one trace HTTP → GraphQL → SQL; spans still buffered are flushed on SIGTERM.
 * The SQL spans come from the pg driver: PostgreSQL only (the embedded PGlite has no pg client).
 */
const execFileAsync = promisify(execFile);
const root = path.join(__dirname, '../../..');
const onPostgres = usesRealPostgres() ? describe : describe.skip;

/** A span as OTLP/JSON carries it (ids in hex). */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Array<{ key: string; value: { stringValue?: string; intValue?: string | number } }>;
  scope: string;
}
const SERVER = 2;
const CLIENT = 3;
const attribute = (span: OtlpSpan, key: string) => span.attributes.find((a) => a.key === key)?.value.stringValue;

/** Compiled into a directory of its own: other test files may be building dist/ at the same moment. */
const outDir = path.join(root, 'dist', `tracing-test-${process.pid}-${crypto.randomBytes(3).toString('hex')}`);
const mainJs = path.join(outDir, 'src', 'main.js');
const telemetryJs = path.join(outDir, 'src', 'telemetry.js');

/** Environment of a child service: no OTEL_* from the developer's shell. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OTEL_') && !['DATABASE_URL', 'TEST_DATABASE_URL'].includes(k)) env[k] = v;
  return { ...env, ...extra };
}

beforeAll(async () => {
  await execFileAsync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', outDir], { cwd: root, timeout: 170_000 });
}, 180_000);
afterAll(() => {
  fs.rmSync(outDir, { recursive: true, force: true });
});

describe('tracing is off unless an OTLP endpoint is set', () => {
  /** How many OpenTelemetry SDK or instrumentation modules loading the service pulls in. */
  const sdkModulesLoaded = async (env: Record<string, string>) => {
    const script = `require(${JSON.stringify(mainJs)}); console.log(Object.keys(require.cache).filter((f) => /@opentelemetry[\\\\/](sdk-|instrumentation)/.test(f)).length)`;
    const { stdout } = await execFileAsync(process.execPath, ['-e', script], { cwd: root, env: childEnv(env), timeout: 30_000 });
    return Number(stdout.trim());
  };

  it('loads none of the SDK without OTEL_EXPORTER_OTLP_ENDPOINT (an empty one counts as unset), and the SDK with it', async () => {
    expect(await sdkModulesLoaded({})).toBe(0);
    expect(await sdkModulesLoaded({ OTEL_EXPORTER_OTLP_ENDPOINT: '' })).toBe(0);
    expect(await sdkModulesLoaded({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' })).toBeGreaterThan(0);
  });
});

onPostgres('one trace per request, HTTP → GraphQL → SQL', () => {
  const spans: OtlpSpan[] = [];
  let receiver: http.Server;
  let child: ChildProcess | undefined;
  let output = '';
  let dataDir: string;
  let drop: () => Promise<void> = async () => undefined;
  let url: string;
  let token: string;
  const adminEmail = `trace-${crypto.randomBytes(4).toString('hex')}@example.com`;

  beforeAll(async () => {
    receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      req.on('end', () => {
        if (req.url === '/v1/traces') {
          const payload = JSON.parse(body) as { resourceSpans: Array<{ scopeSpans: Array<{ scope: { name: string }; spans: Omit<OtlpSpan, 'scope'>[] }> }> };
          for (const rs of payload.resourceSpans) for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, scope: ss.scope.name });
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

    const database = await freshDatabaseUrl();
    drop = database.drop;
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenant-trace-'));
    // The telemetry module preloaded, as `node --require` would for any entry point; main.ts
    // imports it first as well, and it starts once.
    child = spawn(process.execPath, ['--require', telemetryJs, mainJs], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: childEnv({
        DATABASE_URL: database.url!,
        DATA_DIR: dataDir,
        PORT: '0',
        NODE_ENV: 'development',
        LOG_LEVEL: 'warn',
        ADMIN_EMAIL: adminEmail,
        // Not needed here, and its assets (built by npm run build, not by this test's tsc) may be absent.
        EXPLORER: 'false',
        OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_COMPRESSION: 'none',
        // Nothing leaves before shutdown: the spans this test sees were flushed by SIGTERM.
        OTEL_BSP_SCHEDULE_DELAY: '600000',
      }),
    });
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && child.exitCode === null) {
      const match = /ready at (http:\/\/localhost:\d+)\/graphql[\s\S]*?\n(eyJ[\w.-]+)\n/.exec(output);
      if (match) {
        url = match[1]!;
        token = match[2]!;
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`service did not start:\n${output}`);
  }, 90_000);

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await new Promise<void>((resolve) => receiver?.close(() => resolve()) ?? resolve());
    await drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('continues the gateway trace through the GraphQL operation to its SQL statements, flushed on SIGTERM', async () => {
    const traceId = crypto.randomBytes(16).toString('hex');
    const gatewaySpan = crypto.randomBytes(8).toString('hex');
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, traceparent: `00-${traceId}-${gatewaySpan}-01` },
      body: JSON.stringify({ query: 'query Who { me { user { id } } }' }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { errors?: unknown }).errors).toBeUndefined();
    // A GET query (its text in the query string), a probe and a scrape, each in a trace of its own.
    const getTrace = crypto.randomBytes(16).toString('hex');
    const get = await fetch(`${url}/graphql?query=${encodeURIComponent('query Typename { __typename }')}`, {
      headers: { authorization: `Bearer ${token}`, 'apollo-require-preflight': 'true', traceparent: `00-${getTrace}-${gatewaySpan}-01` },
    });
    expect(get.status).toBe(200);
    const probeTrace = crypto.randomBytes(16).toString('hex');
    for (const probe of ['/healthz', '/metrics']) expect((await fetch(`${url}${probe}`, { headers: { traceparent: `00-${probeTrace}-${gatewaySpan}-01` } })).status).toBe(200);

    expect(spans).toEqual([]);
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    child!.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise((resolve) => (timer = setTimeout(() => resolve('still running after 20 s'), 20_000)));
    expect(await Promise.race([exited, late])).toBe(0);
    clearTimeout(timer);

    const trace = spans.filter((s) => s.traceId === traceId);
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    const ancestors = (span: OtlpSpan): OtlpSpan[] => {
      const chain: OtlpSpan[] = [];
      for (let p = span.parentSpanId && byId.get(span.parentSpanId); p; p = p.parentSpanId && byId.get(p.parentSpanId)) chain.push(p);
      return chain;
    };

    // HTTP: one server span, the gateway's span as its parent.
    const server = trace.filter((s) => s.kind === SERVER);
    expect(server.map((s) => [s.scope, s.parentSpanId, attribute(s, 'http.request.method')])).toEqual([['@opentelemetry/instrumentation-http', gatewaySpan, 'POST']]);
    // Named by its route, though the POST never passed through Express (src/http/edge.ts), as the GET that did.
    expect([server[0]!.name, attribute(server[0]!, 'http.route')]).toEqual(['POST /graphql', '/graphql']);
    // Every other span of the trace hangs under it: one tree.
    for (const span of trace) if (span !== server[0]) expect([span.name, ancestors(span).at(-1)?.spanId]).toEqual([span.name, server[0]!.spanId]);

    // GraphQL: parse and validate (graphql-js, instrumented) and the operation (the service's compiled executor), under the HTTP span.
    const graphql = trace.filter((s) => s.scope === '@opentelemetry/instrumentation-graphql' || (s.scope === 'tenant-service' && s.name.startsWith('query ')));
    expect(graphql.map((s) => s.name).sort()).toEqual(['graphql.parse', 'graphql.validate', 'query Who']);
    const operation = graphql.find((s) => s.name === 'query Who')!;
    expect(attribute(operation, 'graphql.operation.name')).toBe('Who');

    // SQL: client spans of the statements the operation sent through the pg client (statementSender), under the operation.
    const sql = trace.filter((s) => s.scope === '@opentelemetry/instrumentation-pg' && s.name.startsWith('pg.query'));
    const underOperation = sql.filter((s) => ancestors(s).includes(operation));
    expect(underOperation.length).toBeGreaterThanOrEqual(2);
    expect(underOperation.every((s) => s.kind === CLIENT && attribute(s, 'db.system.name') === 'postgresql')).toBe(true);
    // The statement that opens the transaction carries the principal inline: masked. It EXECUTEs
    // the opening prepared in SQL, which the connection's first opening PREPAREs in the same message.
    const openings = spans.filter((s) => s.scope === '@opentelemetry/instrumentation-pg' && /BEGIN; EXECUTE/.test(attribute(s, 'db.query.text') ?? ''));
    expect(openings.length).toBeGreaterThanOrEqual(1);
    for (const opening of openings) {
      // Every argument masked; a PREPARE holds placeholders only.
      expect(attribute(opening, 'db.query.text')).toMatch(/^(PREPARE (\w+) AS SELECT [^;']*; )?BEGIN; EXECUTE \w+\((?:'\?'|NULL)(?:, (?:'\?'|NULL))*\)$/);
    }
    expect(sql.some((s) => openings.includes(s))).toBe(true);

    // The GET query's text was in its query string: not recorded.
    const getServer = spans.filter((s) => s.traceId === getTrace && s.kind === SERVER);
    expect(getServer.map((s) => [s.name, attribute(s, 'url.query')])).toEqual([['GET /graphql', '[redacted]']]);
    expect(JSON.stringify(getServer)).not.toMatch(/Typename|__typename/);
    // Probes and scrapes make no spans; start-up (schema parsing, migrations) makes no traces of its own.
    expect(spans.filter((s) => s.traceId === probeTrace)).toEqual([]);
    const exported = new Set(spans.map((s) => s.spanId));
    expect(spans.filter((s) => !(s.parentSpanId && exported.has(s.parentSpanId)) && s.kind !== SERVER).map((s) => s.name)).toEqual([]);
    // No token, email or GraphQL document value reaches a span.
    const text = JSON.stringify(spans);
    for (const leak of [token, adminEmail, token.split('.')[1]!]) expect(text).not.toContain(leak);

    // main.ts applied LOG_LEVEL=warn: its start-up warning, none of the request or shutdown info lines.
    const logLines = output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string });
    expect(logLines.map((l) => [l.level, l.msg])).toEqual([[40, expect.stringContaining('SECRETS_MASTER_KEY is not set')]]);
  }, 60_000);
});
