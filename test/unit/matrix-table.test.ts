import { readFileSync } from 'node:fs';
import path from 'node:path';
import { MATRIX_TABLE_END, MATRIX_TABLE_START, matrixTable } from '../../src/authz/matrix-table';
import { SYSTEM_ROLES, WORKSPACE_ROLE_PERMISSIONS } from '../../src/authz/permissions';

describe('README roles × permissions table', () => {
  it('is exactly what `npm run matrix:table` prints from the matrix data', () => {
    const readme = readFileSync(path.join(__dirname, '../../README.md'), 'utf8');
    const start = readme.indexOf(MATRIX_TABLE_START);
    const end = readme.indexOf(MATRIX_TABLE_END);
    expect(start).toBeGreaterThan(-1);
    expect(end).toBeGreaterThan(start);
    const inReadme = readme.slice(start + MATRIX_TABLE_START.length, end).trim();
    expect(inReadme).toBe(matrixTable());
  });

  it('has a column per system and workspace role and a tick exactly where the data grants', () => {
    const [header, , ...rows] = matrixTable().split('\n');
    const columns = header!.split('|').map((c) => c.trim()).filter(Boolean).slice(2).map((c) => c.replace(/`/g, ''));
    const grants: Record<string, readonly string[]> = {
      ...Object.fromEntries(SYSTEM_ROLES.map((r) => [r.key, r.permissions])),
      ...WORKSPACE_ROLE_PERMISSIONS,
    };
    expect(columns).toEqual(Object.keys(grants));
    for (const row of rows) {
      const cells = row.split('|').slice(1, -1).map((c) => c.trim());
      const code = cells[0]!.replace(/`/g, '');
      columns.forEach((role, i) => expect([code, role, cells[i + 2]]).toEqual([code, role, grants[role]!.includes(code) ? '✓' : '']));
    }
  });
});
