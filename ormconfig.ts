/** The DataSource for the TypeORM CLI (`npx typeorm migration:run -d dist/ormconfig.js`). */
import 'reflect-metadata';
import path from 'node:path';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from './src/database/database';

export default new DataSource(
  dataSourceOptions({
    url: process.env.DATABASE_URL?.trim() || undefined,
    dataDir: path.join(path.resolve(process.env.DATA_DIR?.trim() || './.data'), 'pglite'),
  }),
);
