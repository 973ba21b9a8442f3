import type { DataSource, EntityTarget, ObjectLiteral } from 'typeorm';

/**
 * Turns a raw row (snake_case columns) into an entity instance using the TypeORM metadata, so that
 * hand-written batch queries (loaders with window functions) return the same objects as repositories.
 */
export function hydrator<T extends ObjectLiteral>(dataSource: DataSource, target: EntityTarget<T>): (row: Record<string, unknown>) => T {
  // Built once per data source and entity: loaders ask for theirs on every request.
  let known = hydrators.get(dataSource);
  if (!known) hydrators.set(dataSource, (known = new Map()));
  let hydrate = known.get(target);
  if (!hydrate) known.set(target, (hydrate = buildHydrator(dataSource, target) as (row: Record<string, unknown>) => ObjectLiteral));
  return hydrate as (row: Record<string, unknown>) => T;
}

const hydrators = new WeakMap<DataSource, Map<EntityTarget<ObjectLiteral>, (row: Record<string, unknown>) => ObjectLiteral>>();

function buildHydrator<T extends ObjectLiteral>(dataSource: DataSource, target: EntityTarget<T>): (row: Record<string, unknown>) => T {
  const metadata = dataSource.getMetadata(target);
  const columns = metadata.columns.map((c) => ({
    property: c.propertyName,
    column: c.databaseName,
    from: c.transformer && !Array.isArray(c.transformer) ? c.transformer.from.bind(c.transformer) : undefined,
    isDate: c.type === 'timestamptz',
    isBytes: c.type === 'bytea',
  }));
  return (row) => {
    const entity = metadata.create() as T;
    for (const c of columns) {
      let value = row[c.column];
      if (value === undefined) continue;
      if (c.isDate && value !== null && !(value instanceof Date)) value = new Date(value as string);
      if (c.isBytes && value instanceof Uint8Array && !Buffer.isBuffer(value)) value = Buffer.from(value);
      (entity as Record<string, unknown>)[c.property] = c.from ? c.from(value) : value;
    }
    return entity;
  };
}
