import fs from 'node:fs';
import path from 'node:path';
import { isObjectType, type GraphQLSchema } from 'graphql';
import { getMetadataStorage } from 'type-graphql';
import { buildAppSchema } from '../../src/schema';
import { compiledExecution } from '../../src/graphql/executor';
import { PLAIN_DATA_TYPES } from '../../src/graphql/plain-data';

/**
 * Plain-data types (PlainDataObjectType) have their leaf fields read inline by the compiled
 * executor, outside any error handling: a read that threw would leave the request unanswered with
 * its transaction open. What makes the read safe is held here: their objects have no accessors.
 */
const SRC = path.join(__dirname, '..', '..', 'src');
const files = (dir: string): string[] =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));

let schema: GraphQLSchema;
beforeAll(async () => {
  schema = await buildAppSchema();
  await compiledExecution(schema).load({ apollo: {} } as never);
});

const classOf = (name: string) => {
  const metadata = getMetadataStorage().objectTypes.find((o) => o.name === name);
  if (!metadata) throw new Error(`no type-graphql object type ${name}`);
  return metadata;
};

describe('plain-data types', () => {
  it('are the row types of the hot lists, and not Organization (its invitation preview throws from getters)', () => {
    expect([...PLAIN_DATA_TYPES].sort()).toEqual(['Environment', 'EnvironmentResources', 'Membership', 'Role', 'User', 'Workspace']);
  });

  it('declare no accessor on their classes and rename no field: every stored field is a data property under its GraphQL name', () => {
    for (const name of PLAIN_DATA_TYPES) {
      const metadata = classOf(name);
      for (let proto = metadata.target.prototype as object | null; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
        const accessors = Object.entries(Object.getOwnPropertyDescriptors(proto))
          .filter(([, d]) => d.get || d.set)
          .map(([key]) => key);
        expect({ name, accessors }).toEqual({ name, accessors: [] });
      }
      expect({ name, renamed: metadata.fields!.filter((f) => f.name !== f.schemaName).map((f) => f.name) }).toEqual({ name, renamed: [] });
    }
  });

  it('are never built with accessors: no Object.create of their prototype, no Proxy', () => {
    const classes = [...PLAIN_DATA_TYPES].map((name) => classOf(name).target.name);
    const offending = files(SRC).filter((f) => {
      const text = fs.readFileSync(f, 'utf8');
      return /new Proxy\(/.test(text) || classes.some((c) => new RegExp(`Object\\.(create|setPrototypeOf)\\([^)]*\\b${c}\\.prototype`).test(text));
    });
    expect(offending).toEqual([]);
    // Accessors defined on an object one by one: each place is known not to touch a plain-data
    // object (the loader set's prototype, a log record's value, the organization preview). A new
    // one must be checked against PLAIN_DATA_TYPES before it joins this list.
    const defining = files(SRC)
      .filter((f) => /Object\.definePropert(y|ies)\(/.test(fs.readFileSync(f, 'utf8')))
      .map((f) => path.relative(SRC, f))
      .sort();
    expect(defining).toEqual(['database/loader-helpers.ts', 'http/request-log.ts', 'modules/invitation/invitation.resolver.ts']);
    // The check sees the construct it forbids: the organization preview.
    expect(fs.readFileSync(path.join(SRC, 'modules/invitation/invitation.resolver.ts'), 'utf8')).toMatch(/Object\.create\(Organization\.prototype\)/);
  });

  it('leave their leaf fields without a resolver for the compiled executor; other fields and types keep one', () => {
    const fields = (type: string) => {
      const t = schema.getType(type);
      if (!isObjectType(t)) throw new Error(type);
      return t.getFields();
    };
    expect(fields('Environment').name!.resolve).toBeUndefined();
    expect(fields('Environment').tier!.resolve).toBeUndefined();
    expect(fields('Workspace').createdAt!.resolve).toBeUndefined();
    expect(fields('User').email!.resolve).toBeUndefined();
    // A field resolver, an object field, a type that is not plain data.
    expect(fields('Workspace').environments!.resolve).toBeInstanceOf(Function);
    expect(fields('Environment').resources!.resolve).toBeInstanceOf(Function);
    expect(fields('Organization').name!.resolve).toBeInstanceOf(Function);
    expect(fields('Organization').slug!.resolve).toBeInstanceOf(Function);
  });
});
