import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Writes `content` to `file` unless it exists, atomically: the file appears whole or not at all.
 * Instances starting together on one DATA_DIR each try; the first one wins and the others read
 * its file (with `writeFileSync(…, { flag: 'wx' })` the file exists, empty, before its content
 * is written, and a second instance could read it in between). Returns false when it already existed.
 */
export function writeFileOnce(file: string, content: string, mode = 0o600): boolean {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  fs.writeFileSync(temporary, content, { flag: 'wx', mode });
  try {
    // link() fails with EEXIST when the file exists, and otherwise publishes the complete file.
    fs.linkSync(temporary, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return false;
  } finally {
    fs.rmSync(temporary, { force: true });
  }
}
