import crypto from 'node:crypto';
import { createLogger } from '../../../src/common/logging';
import { ConfigError, loadConfig } from '../../../src/config';
import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { createOrganization, uniqueEmail } from '../../helpers/factories';

/**
 * LOG_LEVEL as main.ts applies it (loadConfig → createLogger), and what the most verbose level
 * writes: request lines, never a token or a secret value.
 */
function appLogging(level: string): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const logger = createLogger(loadConfig({ NODE_ENV: 'development', LOG_LEVEL: level }).logLevel, { write: (line: string) => void lines.push(line) });
  return { lines, logger };
}

describe('LOG_LEVEL', () => {
  it('defaults to info (silent under NODE_ENV=test) and refuses unknown levels', () => {
    expect(loadConfig({ NODE_ENV: 'development' }).logLevel).toBe('info');
    expect(loadConfig({ NODE_ENV: 'production', SECRETS_MASTER_KEY: crypto.randomBytes(32).toString('base64'), AUTH_JWKS_URL: 'https://idp.example.com/jwks', AUTH_ISSUER: 'https://idp.example.com/', AUTH_AUDIENCE: 'tenant' }).logLevel).toBe('info');
    expect(loadConfig({ NODE_ENV: 'test' }).logLevel).toBe('silent');
    expect(loadConfig({ NODE_ENV: 'development', LOG_LEVEL: '' }).logLevel).toBe('info');
    expect(() => loadConfig({ LOG_LEVEL: 'verbose' })).toThrow(ConfigError);
    expect(() => loadConfig({ LOG_LEVEL: 'verbose' })).toThrow(/^LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent/);
  });

  describe('warn: no request lines', () => {
    const { lines, logger } = appLogging('warn');
    let app: TestApp;
    beforeAll(async () => {
      app = await startTestApp({ logger });
    });
    afterAll(async () => {
      await app?.close();
    });

    it('answers requests without writing their info lines', async () => {
      expect(logger.isLevelEnabled('warn')).toBe(true);
      expect(logger.isLevelEnabled('info')).toBe(false);
      ok(await app.gql('query Who { me { user { id } } }', {}, { as: uniqueEmail('quiet') }));
      expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 50));
      // Warnings may be written (e.g. an explorer not built yet); nothing below warn.
      expect(lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level < 40 || l.msg === 'request')).toEqual([]);
    });
  });

  describe('trace (the most verbose): request lines, no token, no secret value', () => {
    const { lines, logger } = appLogging('trace');
    let app: TestApp;
    beforeAll(async () => {
      app = await startTestApp({ logger });
    });
    afterAll(async () => {
      await app?.close();
    });

    it('logs each request once with its fields, and never the bearer token, the credentials or variables', async () => {
      const email = uniqueEmail('verbose');
      const org = await createOrganization(app, email);
      const token = await app.token(email);
      const secret = `sk-${crypto.randomBytes(12).toString('hex')}`;
      const requestId = `trace-${crypto.randomBytes(6).toString('hex')}`;
      const created = await app.gql(
        'mutation Make($ws: ID!, $input: CreateEnvironmentInput!) { createEnvironment(workspaceId: $ws, input: $input) { id } }',
        { ws: org.defaultWorkspaceId, input: { name: 'Verbose', tier: 'DEV', resources: { cpu: 1, ramMb: 512, diskGb: 1 }, cloudCredentials: { accessKeyId: secret, secretAccessKey: secret } } },
        { token, headers: { 'x-request-id': requestId } },
      );
      ok(created);
      // A value refused in coercion (a secret in the wrong shape) and a refused token.
      const refused = await app.gql('mutation($id: ID!, $input: UpdateEnvironmentInput!) { updateEnvironment(id: $id, input: $input) { id } }', { id: created.data!.createEnvironment.id, input: { cloudCredentials: secret } }, { token });
      expect(codes(refused)).toEqual(['BAD_USER_INPUT']);
      const forged = `${token.slice(0, -4)}AAAA`;
      expect((await app.gql('{ me { user { id } } }', {}, { token: forged })).status).toBe(401);
      await new Promise((r) => setTimeout(r, 50));

      const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      const mine = parsed.filter((l) => l.msg === 'request' && l.requestId === requestId);
      expect(mine).toHaveLength(1);
      expect(mine[0]).toMatchObject({ level: 30, method: 'POST', path: '/graphql', status: 200, operation: 'Make', errors: [], requestId });
      expect(typeof mine[0]!.principal).toBe('string');
      expect(typeof mine[0]!.durationMs).toBe('number');
      const text = lines.join('\n');
      for (const leak of [token, forged, token.split('.')[1]!, token.split('.')[2]!, secret, 'cloudCredentials', 'accessKeyId']) expect([leak, text.includes(leak)]).toEqual([leak, false]);
    });
  });
});
