/**
 * `npm run token -- --email a@b.c [--name N] [--mfa] [--ttl SECONDS]`: prints a dev-issuer token.
 * Reads only the key pair in DATA_DIR; never opens the database.
 */
import path from 'node:path';
import { DevIssuer } from '../auth/dev-issuer';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const email = arg('email') ?? process.env.ADMIN_EMAIL ?? 'admin@localhost';
  if (!/^[^\s@]+@[^\s@]+$/.test(email)) {
    process.stderr.write(`--email: "${email}" is not an email address\n`);
    process.exit(2);
  }
  const ttl = arg('ttl');
  const dataDir = path.resolve(process.env.DATA_DIR?.trim() || './.data');
  const issuer = await DevIssuer.load(dataDir);
  const token = await issuer.sign({ email, name: arg('name'), mfa: process.argv.includes('--mfa'), ttlSeconds: ttl ? Number(ttl) : undefined });
  process.stdout.write(`${token}\n`);
}

void main();
