import { ok, startTestApp, type TestApp } from '../../helpers/app';
import { uniqueEmail } from '../../helpers/factories';

const CREATE = `mutation { createOrganization(input: { name: "Origin" }) { id auditEvents { nodes { action ipAddress userAgent requestId actor { type id email } } } } }`;

async function createAndReadEvent(app: TestApp, headers: Record<string, string>) {
  const owner = uniqueEmail('origin');
  const data = ok(await app.gql(CREATE, {}, { as: owner, headers }));
  const me = ok(await app.gql(`{ me { user { id } } }`, {}, { as: owner }));
  return { event: data.createOrganization.auditEvents.nodes[0], owner, userId: me.me.user.id };
}

describe('audit events record who did it and from where', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app?.close();
  });

  it('stores the actor, the client address, the user agent and the request id', async () => {
    const { event, owner, userId } = await createAndReadEvent(app, { 'x-request-id': 'req-origin-1', 'user-agent': 'TenantTest/1.0' });
    expect(event).toEqual({
      action: 'organization.created',
      ipAddress: '127.0.0.1',
      userAgent: 'TenantTest/1.0',
      requestId: 'req-origin-1',
      actor: { type: 'USER', id: userId, email: owner },
    });
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', async () => {
    const { event } = await createAndReadEvent(app, { 'x-forwarded-for': '203.0.113.7' });
    expect(event.ipAddress).toBe('127.0.0.1');
  });

  it('replaces an unusable request id with a generated one', async () => {
    const { event } = await createAndReadEvent(app, { 'x-request-id': 'has spaces; and junk' });
    expect(event.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('behind a trusted proxy', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ env: { TRUSTED_PROXIES: '127.0.0.1/32' } });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('takes the client address from X-Forwarded-For, right-most untrusted hop first', async () => {
    const { event } = await createAndReadEvent(app, { 'x-forwarded-for': '198.51.100.9, 203.0.113.7' });
    expect(event.ipAddress).toBe('203.0.113.7');
  });
});
