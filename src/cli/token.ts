/**
 * `npm run token -- --email a@b.c [--name N] [--mfa] [--ttl SECONDS]`: prints a dev-issuer token.
 * Reads only the key pair in DATA_DIR; never opens the database and never creates a key (a new
 * key would sign tokens the running service refuses).
 */
import path from 'node:path';
import { DevIssuer, DevIssuerKeyMissingError } from '../auth/dev-issuer';

const DEFAULT_TTL_SECONDS = 12 * 3600;
const MAX_TTL_SECONDS = 30 * 24 * 3600;

export const USAGE = `Usage: npm run token -- [--email EMAIL] [--name NAME] [--mfa] [--ttl SECONDS]

Prints a token signed by the dev issuer key in DATA_DIR (default ./.data), the key the service
running with that DATA_DIR accepts. Start the service once first: it creates the key.

  --email EMAIL    the user (default: $ADMIN_EMAIL, else admin@localhost)
  --name NAME      the name claim
  --mfa            adds "mfa" to the amr claim
  --ttl SECONDS    lifetime, 1 to ${MAX_TTL_SECONDS} (default ${DEFAULT_TTL_SECONDS}: 12 h)
  --help           this text
`;

/** A bad command line: one line on stderr, exit code 2. */
export class UsageError extends Error {}

export type TokenCommand = { help: true } | { help: false; email: string; name?: string; mfa: boolean; ttlSeconds: number; dataDir: string };

type Env = Record<string, string | undefined>;

export function parseTokenArgs(argv: string[], env: Env): TokenCommand {
  if (argv.includes('--help') || argv.includes('-h')) return { help: true };
  const values = new Map<string, string>();
  let mfa = false;
  for (let i = 0; i < argv.length; i++) {
    const option = argv[i]!;
    if (option === '--mfa') {
      mfa = true;
      continue;
    }
    if (!['--email', '--name', '--ttl'].includes(option)) throw new UsageError(`unknown option "${option}" (see --help)`);
    const value = argv[++i];
    if (value === undefined || value.startsWith('--')) throw new UsageError(`${option} needs a value`);
    values.set(option, value);
  }
  const email = (values.get('--email') ?? env.ADMIN_EMAIL?.trim()) || 'admin@localhost';
  if (!/^[^\s@]+@[^\s@]+$/.test(email)) throw new UsageError(`--email: "${email}" is not an email address`);
  const ttl = values.get('--ttl');
  const ttlSeconds = ttl === undefined ? DEFAULT_TTL_SECONDS : Number(ttl);
  if (ttl !== undefined && (!/^\d+$/.test(ttl) || ttlSeconds < 1 || ttlSeconds > MAX_TTL_SECONDS)) {
    throw new UsageError(`--ttl: must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS} (got "${ttl}")`);
  }
  const dataDir = path.resolve(env.DATA_DIR?.trim() || './.data');
  return { help: false, email, name: values.get('--name'), mfa, ttlSeconds, dataDir };
}

/** Quotes a word for a POSIX shell only when it needs it. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The exact command that mints a token the service running on `dataDir` accepts (printed by the banner). */
export function tokenCommandLine(dataDir: string, email: string): string {
  return `DATA_DIR=${shellWord(dataDir)} npm run token -- --email ${shellWord(email)}`;
}

/** Runs the command; returns the exit code. */
export async function runTokenCli(argv: string[], env: Env, out: (text: string) => void, err: (text: string) => void): Promise<number> {
  let command: TokenCommand;
  try {
    command = parseTokenArgs(argv, env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    err(`npm run token: ${error.message}\n`);
    return 2;
  }
  if (command.help) {
    out(USAGE);
    return 0;
  }
  let issuer: DevIssuer;
  try {
    issuer = await DevIssuer.load(command.dataDir, { create: false });
  } catch (error) {
    if (!(error instanceof DevIssuerKeyMissingError)) throw error;
    err(`npm run token: ${error.message}\n`);
    return 1;
  }
  out(`${await issuer.sign({ email: command.email, name: command.name, mfa: command.mfa, ttlSeconds: command.ttlSeconds })}\n`);
  return 0;
}

if (require.main === module) {
  runTokenCli(process.argv.slice(2), process.env, (t) => process.stdout.write(t), (t) => process.stderr.write(t)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`npm run token: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
