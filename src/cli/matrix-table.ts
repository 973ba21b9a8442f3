/** `npm run matrix:table`: prints the README's roles × permissions table, generated from the matrix data. */
import { matrixTable } from '../authz/matrix-table';

process.stdout.write(`${matrixTable()}\n`);
