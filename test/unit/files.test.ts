import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileOnce } from '../../src/common/files';

describe('writeFileOnce (key files made by instances starting together)', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'write-once-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('keeps the first content, readable by its owner only, and leaves no temporary file', () => {
    const file = path.join(dir, 'sub', 'key');
    expect(writeFileOnce(file, 'first')).toBe(true);
    expect(writeFileOnce(file, 'second')).toBe(false);
    expect(fs.readFileSync(file, 'utf8')).toBe('first');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['key']);
  });

  it('publishes the file only once it is complete: the content is written to a temporary name, then linked in one step', () => {
    const file = path.join(dir, 'key');
    const writes: Array<{ target: string; finalExists: boolean }> = [];
    const original = fs.writeFileSync;
    const spy = jest.spyOn(fs, 'writeFileSync').mockImplementation((target, ...rest) => {
      writes.push({ target: String(target), finalExists: fs.existsSync(file) });
      return original(target, ...rest);
    });
    try {
      writeFileOnce(file, 'x'.repeat(1024 * 1024));
    } finally {
      spy.mockRestore();
    }
    // Nothing is ever written to the final name, which does not exist while content is written:
    // a second instance reading it finds it whole or absent, never empty or cut short.
    expect(writes.length).toBe(1);
    expect(writes[0]!.target).not.toBe(file);
    expect(writes[0]!.finalExists).toBe(false);
    expect(fs.readFileSync(file, 'utf8')).toHaveLength(1024 * 1024);
  });
});
