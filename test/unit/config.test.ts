import { ConfigError, loadConfig } from '../../src/config';

const fails = (env: Record<string, string>): ConfigError => {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
};

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 4000,
      dbPoolMax: 10,
      dbStatementTimeoutMs: 15000,
      dbIdleInTransactionTimeoutMs: 60000,
      dbConnectionTimeoutMs: 5000,
      adminEmail: 'admin@localhost',
      nodeEnv: 'development',
      trialDays: 14,
      retentionDays: 30,
      personalOrganizations: false,
      rateLimitUserPerMinute: 600,
      jobIntervalSeconds: 60,
      introspection: true,
      explorer: true,
    });
    expect(c.auth).toEqual({ external: undefined, algorithms: ['RS256', 'ES256'] });
    expect(c.databaseUrl).toBeUndefined();
  });

  it('reads BILLING_WEBHOOK_SECRET (unset by default: the webhook answers 404) and refuses one shorter than 16 characters', () => {
    expect(loadConfig({}).billingWebhookSecret).toBeUndefined();
    expect(loadConfig({ BILLING_WEBHOOK_SECRET: 'whsec_0123456789abcdef' }).billingWebhookSecret).toBe('whsec_0123456789abcdef');
    expect(() => loadConfig({ BILLING_WEBHOOK_SECRET: 'short' })).toThrow('BILLING_WEBHOOK_SECRET: must be at least 16 characters');
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '  ', TRIAL_DAYS: '' })).toMatchObject({ port: 4000, databaseUrl: undefined, trialDays: 14 });
  });

  it.each([
    [{ PORT: 'abc' }, 'PORT', 'PORT: must be a whole number (got "abc")'],
    [{ PORT: '70000' }, 'PORT', 'PORT: must be between 0 and 65535 (got 70000)'],
    [{ DB_POOL_MAX: '1' }, 'DB_POOL_MAX', 'DB_POOL_MAX: must be between 2 and 1000 (got 1)'],
    [{ DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: '0' }, 'DB_IDLE_IN_TRANSACTION_TIMEOUT_MS', 'DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: must be between 100 and 3600000 (got 0)'],
    [{ DB_COMMIT_DEFER_MS: '2000' }, 'DB_COMMIT_DEFER_MS', 'DB_COMMIT_DEFER_MS: must be between 0 and 1000 (got 2000)'],
    [
      { DB_COMMIT_DEFER_MS: '20', DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: '150' },
      'DB_COMMIT_DEFER_MS',
      'DB_COMMIT_DEFER_MS: must be at most a tenth of DB_IDLE_IN_TRANSACTION_TIMEOUT_MS (150 ms)',
    ],
    [{ DB_CONNECTION_TIMEOUT_MS: '5s' }, 'DB_CONNECTION_TIMEOUT_MS', 'DB_CONNECTION_TIMEOUT_MS: must be a whole number (got "5s")'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL', 'DATABASE_URL: must use postgres or postgresql'],
    [{ SECRETS_MASTER_KEY: 'c2hvcnQ=' }, 'SECRETS_MASTER_KEY', 'SECRETS_MASTER_KEY: must be 32 bytes encoded in base64 (e.g. `openssl rand -base64 32`)'],
    [{ AUTH_ALGORITHMS: 'HS256' }, 'AUTH_ALGORITHMS', expect.stringContaining('AUTH_ALGORITHMS: "HS256" is not an accepted asymmetric algorithm')],
    [{ AUTH_JWKS_URL: 'https://idp.example/jwks' }, 'AUTH_ISSUER', 'AUTH_ISSUER: must be set together with AUTH_JWKS_URL, AUTH_ISSUER and AUTH_AUDIENCE'],
    [{ PERSONAL_ORGANIZATIONS: 'maybe' }, 'PERSONAL_ORGANIZATIONS', 'PERSONAL_ORGANIZATIONS: must be true or false (got "maybe")'],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV', 'NODE_ENV: must be one of development, production, test (got "staging")'],
    [{ ADMIN_EMAIL: 'nope' }, 'ADMIN_EMAIL', 'ADMIN_EMAIL: is not an email address (got "nope")'],
    [{ TRUSTED_PROXIES: '10.0.0.0/8,bogus' }, 'TRUSTED_PROXIES', 'TRUSTED_PROXIES: "bogus" is not an IP address or CIDR'],
  ])('refuses %j naming %s', (env, variable, message) => {
    const error = fails(env as Record<string, string>);
    expect(error.variable).toBe(variable);
    expect(error.message).toEqual(message);
    expect(error.message).not.toContain('\n');
  });

  it('refuses production without an external issuer or a master key', () => {
    expect(fails({ NODE_ENV: 'production', SECRETS_MASTER_KEY: Buffer.alloc(32, 1).toString('base64') }).variable).toBe('AUTH_JWKS_URL');
    expect(fails({ NODE_ENV: 'production', AUTH_JWKS_URL: 'https://idp/jwks', AUTH_ISSUER: 'https://idp/', AUTH_AUDIENCE: 'api' }).variable).toBe('SECRETS_MASTER_KEY');
    const ok = loadConfig({
      NODE_ENV: 'production',
      AUTH_JWKS_URL: 'https://idp/jwks',
      AUTH_ISSUER: 'https://idp/',
      AUTH_AUDIENCE: 'api',
      SECRETS_MASTER_KEY: Buffer.alloc(32, 1).toString('base64'),
    });
    expect(ok).toMatchObject({ introspection: false, explorer: false, auth: { external: { issuer: 'https://idp/', audience: 'api' } } });
  });

  describe('HOST, CORS_ORIGINS, MAX_QUERY_COST', () => {
    const production = { NODE_ENV: 'production', SECRETS_MASTER_KEY: Buffer.alloc(32, 1).toString('base64'), AUTH_JWKS_URL: 'https://idp.example.com/jwks', AUTH_ISSUER: 'https://idp.example.com/', AUTH_AUDIENCE: 'tenant' };

    it('listens on 127.0.0.1 outside production and on every interface in it', () => {
      expect(loadConfig({}).host).toBe('127.0.0.1');
      expect(loadConfig(production).host).toBe('0.0.0.0');
      expect(loadConfig({ HOST: '::' }).host).toBe('::');
      expect(fails({ HOST: 'example.com' }).message).toBe('HOST: must be an IP address such as 127.0.0.1, 0.0.0.0 or :: (got "example.com")');
    });

    it('allows loopback origins by default outside production, none in production, * only outside it', () => {
      expect(loadConfig({}).corsOrigins).toEqual({ kind: 'loopback' });
      expect(loadConfig(production).corsOrigins).toEqual({ kind: 'list', origins: [] });
      expect(loadConfig({ CORS_ORIGINS: '*' }).corsOrigins).toEqual({ kind: 'any' });
      expect(loadConfig({ CORS_ORIGINS: 'https://a.example, http://b.example:8080' }).corsOrigins).toEqual({ kind: 'list', origins: ['https://a.example', 'http://b.example:8080'] });
      expect(fails({ ...production, CORS_ORIGINS: '*' }).message).toBe('CORS_ORIGINS: "*" is not allowed in production: list the exact origins');
      expect(fails({ CORS_ORIGINS: 'https://a.example/' }).variable).toBe('CORS_ORIGINS');
      expect(fails({ CORS_ORIGINS: 'a.example' }).variable).toBe('CORS_ORIGINS');
    });

    it('limits query cost to 100000 by default', () => {
      expect(loadConfig({}).maxQueryCost).toBe(100_000);
      expect(loadConfig({ MAX_QUERY_COST: '5000' }).maxQueryCost).toBe(5000);
      expect(fails({ MAX_QUERY_COST: '0' }).variable).toBe('MAX_QUERY_COST');
    });
  });
});
