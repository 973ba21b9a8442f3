import { parse } from 'graphql';
import { queryCost, UNPAGINATED_LIST_CAP } from '../../src/graphql/query-cost';
import { buildAppSchema } from '../../src/schema';

let schema: Awaited<ReturnType<typeof buildAppSchema>>;
beforeAll(async () => {
  schema = await buildAppSchema();
});

const cost = (query: string, variables: Record<string, unknown> = {}) => {
  const result = queryCost(schema, parse(query), undefined, variables);
  if (!result || !('cost' in result)) throw new Error('no cost');
  return result.cost;
};

describe('queryCost: objects a query may return (SPEC §8)', () => {
  it('counts every object 1 and scalars 0', () => {
    expect(cost(`{ me { user { id email } } }`)).toBe(2);
  });

  it('multiplies a connection by first (literal, variable or default), not its nodes list again', () => {
    expect(cost(`{ me { organizations(first: 25) { nodes { id } } } }`)).toBe(1 + 1 + 25);
    expect(cost(`query($n: Int) { me { organizations(first: $n) { nodes { id } } } }`, { n: 7 })).toBe(1 + 1 + 7);
    expect(cost(`{ me { organizations { nodes { id } } } }`)).toBe(1 + 1 + 20);
  });

  it('clamps first to 0–100 for the estimate', () => {
    expect(cost(`{ me { organizations(first: 1000) { nodes { id } } } }`)).toBe(1 + 1 + 100);
  });

  it(`multiplies an unpaginated list of objects by ${UNPAGINATED_LIST_CAP}`, () => {
    expect(cost(`{ me { memberships { role { key } } } }`)).toBe(1 + UNPAGINATED_LIST_CAP * 2);
  });

  it('prices the dashboard of SPEC §8 well under the default limit', () => {
    const dashboard = `{ me { organizations(first: 25) { nodes { id workspaces(first: 10) { nodes { id environments { id } } } members(first: 10) { nodes { user { id } } } } } } }`;
    // me + connection + 25 × (organization + workspaces (1 + 10 × (1 + 100)) + members (1 + 10 × 2))
    expect(cost(dashboard)).toBe(1 + 1 + 25 * (1 + (1 + 10 * (1 + 100)) + (1 + 10 * 2)));
  });

  it('reports variables that do not coerce as no cost (the input guard refuses them)', () => {
    expect(queryCost(schema, parse(`query($n: Int) { me { organizations(first: $n) { nodes { id } } } }`), undefined, { n: 'x' })).toBeNull();
  });
});
