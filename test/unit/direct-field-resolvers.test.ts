import { isObjectType, type GraphQLResolveInfo, type GraphQLSchema } from 'graphql';
import { buildSubgraph } from '../../src/schema';
import { WorkspaceEnvironmentsResolver } from '../../src/modules/environment/environment.resolver';
import { OrganizationAuditResolver } from '../../src/modules/audit/audit.resolver';
import { Workspace } from '../../src/modules/workspace/workspace.entity';
import { Organization } from '../../src/modules/organization/organization.entity';

/**
 * Field resolvers called directly (schema.ts, directFieldResolvers) where type-graphql's handler
 * would do the same call through sorted parameters, asynchronous argument validation and
 * Promise.all; type-graphql's own call everywhere else.
 */
let schema: GraphQLSchema;
beforeAll(async () => {
  schema = await buildSubgraph();
});
afterEach(() => jest.restoreAllMocks());

const resolverOf = (type: string, field: string) => {
  const t = schema.getType(type);
  if (!isObjectType(t)) throw new Error(type);
  return t.getFields()[field]!.resolve!;
};
const info = {} as GraphQLResolveInfo;
const ctx = { marker: 'context' };
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('direct field resolvers', () => {
  it('call the method at once with the root, the context, the leaf arguments as given and the info, in the order it declares them', () => {
    const spy = jest.spyOn(WorkspaceEnvironmentsResolver.prototype, 'environments').mockResolvedValue([]);
    const workspace = Object.assign(new Workspace(), { id: 'w1', organizationId: 'o1' });
    void resolverOf('Workspace', 'environments')(workspace, { tier: 'PROD', includeDestroyed: true }, ctx, info);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(spy.mock.calls[0]).toEqual([workspace, ctx, 'PROD', true, info]);
    expect(spy.mock.calls[0]![0]).toBe(workspace);
    expect(spy.mock.instances[0]).toBeInstanceOf(WorkspaceEnvironmentsResolver);
  });

  it('leave a root that is not an instance of its declared class to type-graphql, which copies it into one', async () => {
    const spy = jest.spyOn(WorkspaceEnvironmentsResolver.prototype, 'environments').mockResolvedValue([]);
    const plain = { id: 'w1', organizationId: 'o1' };
    void resolverOf('Workspace', 'environments')(plain, { tier: null, includeDestroyed: false }, ctx, info);
    expect(spy).not.toHaveBeenCalled();
    await settle();
    expect(spy).toHaveBeenCalledTimes(1);
    const root = spy.mock.calls[0]![0];
    expect(root).toBeInstanceOf(Workspace);
    expect(root).not.toBe(plain);
    expect(root).toMatchObject(plain);
  });

  it('leave a method with an input-object argument to type-graphql (it converts the input to its class)', async () => {
    const spy = jest.spyOn(OrganizationAuditResolver.prototype, 'auditEvents').mockResolvedValue({} as never);
    const organization = Object.assign(new Organization(), { id: 'o1' });
    void resolverOf('Organization', 'auditEvents')(organization, { filter: { actions: ['x'] }, first: 5 }, ctx, info);
    expect(spy).not.toHaveBeenCalled();
    await settle();
    expect(spy).toHaveBeenCalledTimes(1);
    const filter = spy.mock.calls[0]![2];
    expect(filter).toEqual(expect.objectContaining({ actions: ['x'] }));
    expect(Object.getPrototypeOf(filter)).not.toBe(Object.prototype);
  });
});
