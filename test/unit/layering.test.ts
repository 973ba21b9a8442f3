import fs from 'node:fs';
import path from 'node:path';

/**
 * Structural rules of the code that a reviewer would otherwise have to remember:
 * - the permission matrix is enforced once, by the shield rules generated from it: services
 *   look targets up (NOT_FOUND) but never pass a permission code of their own;
 * - resolvers hold no SQL: reads go through loaders and services;
 * - the row-level-security scope is set only by the database function app_set_scope.
 */
const SRC = path.join(__dirname, '..', '..', 'src');

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

const all = files(SRC);
const relative = (f: string) => path.relative(SRC, f);
const matching = (list: string[], pattern: RegExp) => list.filter((f) => pattern.test(fs.readFileSync(f, 'utf8'))).map(relative);

describe('layering', () => {
  it('services check no permission the shield rules already checked', () => {
    const services = all.filter((f) => f.endsWith('.service.ts'));
    expect(services.length).toBeGreaterThan(3);
    expect(matching(services, /access\.(organization|workspace|environment|invitation)\([^)]*,\s*['"][a-z_.]+['"]/)).toEqual([]);
    expect(matching(services, /assertOrg\(/)).toEqual([]);
  });

  it('resolvers hold no SQL', () => {
    const resolvers = all.filter((f) => /\.(resolver|mutations)\.ts$/.test(f));
    expect(matching(resolvers, /\.query\(|\bSELECT\b|\bINSERT\b|\bUPDATE\b|\bDELETE\b/)).toEqual([]);
  });

  it('sets the row-level-security scope in one place (app_set_scope), never with set_config from the code', () => {
    const code = all.filter((f) => !f.includes(`${path.sep}migrations${path.sep}`));
    expect(matching(code, /set_config\(/)).toEqual([]);
  });
});
