import { ObjectType } from 'type-graphql';

/** The names of the GraphQL object types declared with PlainDataObjectType. */
export const PLAIN_DATA_TYPES: ReadonlySet<string> = new Set<string>();

/**
 * `@ObjectType(name)` for a type whose objects are plain data: entity rows (from a hydrator or
 * TypeORM) or object literals, whose stored fields are data properties under their GraphQL names —
 * never accessors, so that reading one cannot throw. Such fields need no resolver: type-graphql
 * leaves them without one (`simpleResolvers`), graphql-js reads them with its default resolver,
 * and the compiled executor reads the leaf ones inline (resolversForJit) instead of calling a
 * resolver for each field of each object — with a path, an info object and three closures per
 * call (Q3: 2 200 calls per request). Fields with a resolver or a permission rule keep theirs.
 *
 * test/unit/plain-data.test.ts holds every such type to it: no accessor on its class, no field
 * renamed, no code that builds one of its objects through `Object.create` or a Proxy (as the
 * invitation's organization preview does for Organization, which is therefore not one), and no
 * new `Object.defineProperty` anywhere without a look at these types.
 */
export function PlainDataObjectType(name: string): ClassDecorator {
  return (target) => {
    ObjectType(name, { simpleResolvers: true })(target);
    (PLAIN_DATA_TYPES as Set<string>).add(name);
  };
}
