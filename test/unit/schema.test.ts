import fs from 'node:fs';
import path from 'node:path';
import { printSubgraphSchema } from '@apollo/subgraph';
import { isObjectType } from 'graphql';
import { getMetadataStorage } from 'type-graphql';
import { buildSubgraph } from '../../src/schema';

describe('schema.graphql', () => {
  it('is exactly what the code emits (run `npm run schema` after changing the API)', async () => {
    const emitted = printSubgraphSchema(await buildSubgraph());
    const committed = fs.readFileSync(path.join(__dirname, '../../schema.graphql'), 'utf8');
    expect(committed).toBe(emitted);
  });
});

describe('plain fields', () => {
  /** Types whose objects are rows (hydrated entities): their plain fields hold plain values, never a promise or a function. */
  const ROW_TYPES = ['Organization', 'Workspace', 'Environment', 'EnvironmentResources', 'User', 'Membership', 'Role'];

  it('of row types are read as properties (no resolver: graphql-jit reads them inline); every other type keeps a resolver on each field, which awaits a lazy value such as a connection’s totalCount', async () => {
    const schema = await buildSubgraph();
    const storage = getMetadataStorage();
    const byMethod = new Set(storage.fieldResolvers.map((r) => `${r.getObjectType?.()?.name}.${r.methodName}`));
    const plain = new Map<string, string[]>();
    for (const type of storage.objectTypes) {
      const served = schema.getType(type.name);
      if (!isObjectType(served)) continue;
      for (const field of type.fields) {
        if (byMethod.has(`${type.target.name}.${field.name}`)) continue;
        const key = served.getFields()[field.schemaName]?.resolve ? 'resolved' : 'inline';
        plain.set(key, [...(plain.get(key) ?? []), `${type.name}.${field.schemaName}`]);
      }
    }
    const inlineTypes = new Set((plain.get('inline') ?? []).map((f) => f.split('.')[0]));
    expect([...inlineTypes].sort()).toEqual([...ROW_TYPES].sort());
    expect(plain.get('inline')).toEqual(expect.arrayContaining(['Organization.name', 'Workspace.name', 'Environment.name', 'User.email', 'Role.key']));
    expect(plain.get('resolved')).toEqual(expect.arrayContaining(['OrganizationConnection.totalCount', 'WorkspaceConnection.totalCount']));
  });
});
