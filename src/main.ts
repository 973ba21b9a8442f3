// First, and as a side-effect import (never elided): when tracing is on, its instrumentations
// must hook http, express, graphql and pg before anything loads them.
import './telemetry';
import 'reflect-metadata';
import path from 'node:path';
import { DevIssuer } from './auth/dev-issuer';
import { createExternalVerifier, type TokenVerifier } from './auth/jwt';
import { tokenCommandLine } from './cli/token';
import { createLogger } from './common/logging';
import { type Config, ConfigError, loadConfig } from './config';
import { Envelope, loadMasterKey } from './crypto/envelope';
import { Database } from './database/database';
import { seedDefaultOrganization } from './modules/organization/organization.seed';
import { createScheduler } from './jobs/jobs';
import { createServer } from './server';
import { shutdownTelemetry } from './telemetry';

/** The external issuer when configured; otherwise the dev issuer's key pair in DATA_DIR (never in production). */
export async function createAuth(config: Config): Promise<{ verifier: TokenVerifier; devIssuer: DevIssuer | null }> {
  if (config.auth.external) {
    return { verifier: createExternalVerifier({ ...config.auth.external, algorithms: config.auth.algorithms }), devIssuer: null };
  }
  const devIssuer = await DevIssuer.load(config.dataDir);
  return { verifier: await devIssuer.verifier(), devIssuer };
}

/**
 * A URL a browser on this machine can open: loopback and the wildcard addresses are shown as
 * localhost (what the default CORS origins and most bookmarks use; clients fall back between
 * IPv4 and IPv6), any other address as it is.
 */
export function bannerUrl(host: string, port: number): string {
  const reachable = ['0.0.0.0', '::', '127.0.0.1', 'localhost'].includes(host) ? 'localhost' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`Configuration error: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  const master = loadMasterKey(config.secretsMasterKey, config.dataDir);
  if (master.generated) logger.warn({ dataDir: config.dataDir }, 'SECRETS_MASTER_KEY is not set: using a key generated in DATA_DIR (development only)');

  const db = await Database.open({
    url: config.databaseUrl,
    dataDir: path.join(config.dataDir, 'pglite'),
    poolMax: config.dbPoolMax,
    statementTimeoutMs: config.dbStatementTimeoutMs,
    idleInTransactionTimeoutMs: config.dbIdleInTransactionTimeoutMs,
    connectionTimeoutMs: config.dbConnectionTimeoutMs,
    commitDeferMs: config.dbCommitDeferMs,
  });
  await seedDefaultOrganization(db, config.trialDays);
  const { verifier, devIssuer } = await createAuth(config);
  const envelope = new Envelope(master.key, config.secretsMasterKeyPrevious ? [config.secretsMasterKeyPrevious] : []);
  const server = await createServer({ config, db, logger, envelope, verifier });
  await new Promise<void>((resolve, reject) => {
    server.httpServer.once('error', reject);
    server.httpServer.listen(config.port, config.host, resolve);
  });
  // Background jobs (trial ends, period ends, archiving, invitation expiry…) every JOB_INTERVAL_SECONDS.
  const scheduler = createScheduler({ config, db, logger, envelope });
  scheduler.start();
  const address = server.httpServer.address();
  const port = typeof address === 'object' && address ? address.port : config.port;

  // The banner goes to stdout whatever LOG_LEVEL is, outside the structured log.
  const lines = [
    `Tenant service ready at ${bannerUrl(config.host, port)}/graphql (listening on ${config.host}; ${db.embedded ? `embedded database in ${path.join(config.dataDir, 'pglite')}` : 'PostgreSQL'})`,
  ];
  if (devIssuer) {
    lines.push(`Dev token for ${config.adminEmail} (valid 12 h; more with: ${tokenCommandLine(config.dataDir, config.adminEmail)}):`);
    lines.push(await devIssuer.sign({ email: config.adminEmail, name: 'Admin' }));
  }
  process.stdout.write(`${lines.join('\n')}\n`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    try {
      await server.stop();
      // The run in progress finishes before the database closes.
      await scheduler.stop();
      await db.close();
      // The spans of the last requests are flushed before the process exits.
      await shutdownTelemetry();
      logger.info('stopped');
      logger.flush();
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

if (require.main === module) {
  main().catch((error) => {
    process.stderr.write(`Start-up failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
