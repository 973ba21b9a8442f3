import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DevIssuer } from '../../src/auth/dev-issuer';
import { runTokenCli, tokenCommandLine } from '../../src/cli/token';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'token-cli-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function run(argv: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runTokenCli(argv, { DATA_DIR: dir, ...env }, (t) => (stdout += t), (t) => (stderr += t));
  return { code, stdout, stderr };
}

describe('npm run token', () => {
  it('--help prints the usage, with the default email, and no token', async () => {
    const { code, stdout, stderr } = await run(['--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: npm run token/);
    expect(stdout).toContain('default: $ADMIN_EMAIL, else admin@localhost');
    expect(stdout).not.toMatch(/eyJ/);
    expect(stderr).toBe('');
  });

  it.each(['abc', '0', '-5', '1.5', '99999999999'])('refuses --ttl %s with one line and exit code 2', async (ttl) => {
    await DevIssuer.load(dir);
    const { code, stdout, stderr } = await run(['--email', 'a@b.c', '--ttl', ttl]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain('--ttl');
  });

  it('refuses an unknown option and a missing value', async () => {
    expect((await run(['--emial', 'a@b.c'])).code).toBe(2);
    expect((await run(['--email'])).code).toBe(2);
  });

  it('never creates a key: says where it looked', async () => {
    const { code, stdout, stderr } = await run(['--email', 'a@b.c']);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain(path.join(dir, 'dev-issuer-key.json'));
    expect(stderr).toMatch(/start the service first/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('signs with the key in DATA_DIR, which that service accepts', async () => {
    const issuer = await DevIssuer.load(dir);
    const { code, stdout } = await run(['--email', 'Someone@Example.com', '--ttl', '60']);
    expect(code).toBe(0);
    const identity = await (await issuer.verifier()).verify(stdout.trim());
    expect(identity.email).toBe('someone@example.com');
  });

  it('the banner command names DATA_DIR absolutely, quoted when needed', () => {
    expect(tokenCommandLine('/srv/app/.data', 'admin@localhost')).toBe('DATA_DIR=/srv/app/.data npm run token -- --email admin@localhost');
    expect(tokenCommandLine("/home/me/my data/it's", 'a@b.c')).toBe(`DATA_DIR='/home/me/my data/it'\\''s' npm run token -- --email a@b.c`);
  });
});
