import { randomUUID } from 'node:crypto';
import { signWebhook } from '../../../src/http/billing-webhook';
import { codes, ok, startTestApp, type TestApp } from '../../helpers/app';
import { createOrganization, uniqueEmail } from '../../helpers/factories';
import { readAll } from '../../helpers/db';
import { ORG_BILLING, setSubscription, subscriptionEvents, subscriptionRow } from './billing-helpers';

/** POST /billing/webhook (README, "Billing webhook"): signed, replay-protected, moving subscriptions as a payment provider would. */

const SECRET = 'whsec_test_0123456789abcdef';
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ env: { BILLING_WEBHOOK_SECRET: SECRET } });
});
afterAll(async () => {
  await app?.close();
});

const now = () => Math.floor(Date.now() / 1000);

async function post(body: unknown, options: { timestamp?: number; secret?: string; signature?: string; target?: TestApp } = {}) {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  const timestamp = options.timestamp ?? now();
  const signature = options.signature ?? signWebhook(options.secret ?? SECRET, timestamp, raw);
  const res = await fetch(`${(options.target ?? app).url}/billing/webhook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'billing-timestamp': String(timestamp), 'billing-signature': signature },
    body: raw,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const event = (organizationId: string, status: string, id = `evt_${randomUUID()}`) => ({ id, type: 'subscription.status', organizationId, status });

async function activeOrganization() {
  const owner = uniqueEmail('hook');
  const org = await createOrganization(app, owner);
  ok(await app.gql(`mutation($org: ID!) { changePlan(organizationId: $org, plan: STARTER) { status } }`, { org: org.id }, { as: owner }));
  return { org, owner };
}

describe('POST /billing/webhook', () => {
  it('moves ACTIVE → PAST_DUE → SUSPENDED → ACTIVE, each audited subscription.status_changed with the system actor', async () => {
    const { org, owner } = await activeOrganization();
    expect(await post(event(org.id, 'PAST_DUE'))).toEqual({ status: 200, body: { result: 'applied', status: 'PAST_DUE' } });
    let o = ok(await app.gql(ORG_BILLING, { id: org.id }, { as: owner })).organization;
    expect([o.status, o.subscription.status]).toEqual(['ACTIVE', 'PAST_DUE']);
    // PAST_DUE is not read-only.
    ok(await app.gql(`mutation($id: ID!) { updateOrganization(id: $id, input: { description: "late" }) { id } }`, { id: org.id }, { as: owner }));

    expect((await post(event(org.id, 'SUSPENDED'))).body).toEqual({ result: 'applied', status: 'SUSPENDED' });
    o = ok(await app.gql(ORG_BILLING, { id: org.id }, { as: owner })).organization;
    expect([o.status, o.isActive, o.subscription.status]).toEqual(['SUSPENDED', false, 'SUSPENDED']);
    expect(codes(await app.gql(`mutation($id: ID!) { updateOrganization(id: $id, input: { description: "x" }) { id } }`, { id: org.id }, { as: owner }))).toEqual(['ORGANIZATION_INACTIVE']);

    expect((await post(event(org.id, 'ACTIVE'))).body).toEqual({ result: 'applied', status: 'ACTIVE' });
    o = ok(await app.gql(ORG_BILLING, { id: org.id }, { as: owner })).organization;
    expect([o.status, o.subscription.status]).toEqual(['ACTIVE', 'ACTIVE']);
    ok(await app.gql(`mutation($id: ID!) { updateOrganization(id: $id, input: { description: "paid" }) { id } }`, { id: org.id }, { as: owner }));

    const events = (await subscriptionEvents(app, org.id)).filter((e) => e.action === 'subscription.status_changed');
    expect(events.map((e) => [e.actor_type, e.actor_name, e.changes!.oldValues.status, e.changes!.newValues.status, e.metadata!.source])).toEqual([
      ['SYSTEM', 'billing-webhook', 'ACTIVE', 'PAST_DUE', 'billing_webhook'],
      ['SYSTEM', 'billing-webhook', 'PAST_DUE', 'SUSPENDED', 'billing_webhook'],
      ['SYSTEM', 'billing-webhook', 'SUSPENDED', 'ACTIVE', 'billing_webhook'],
    ]);
  });

  it('also suspends straight from ACTIVE, and reactivates from PAST_DUE', async () => {
    const { org } = await activeOrganization();
    expect((await post(event(org.id, 'SUSPENDED'))).status).toBe(200);
    expect((await subscriptionRow(app, org.id)).status).toBe('SUSPENDED');
    await setSubscription(app, org.id, `status = 'PAST_DUE'`);
    expect((await post(event(org.id, 'ACTIVE'))).body).toEqual({ result: 'applied', status: 'ACTIVE' });
  });

  it('refuses a bad signature, a wrong secret, a missing signature and a stale or future timestamp with 401; nothing changes', async () => {
    const { org } = await activeOrganization();
    const body = JSON.stringify(event(org.id, 'SUSPENDED'));
    const ts = now();
    expect(await post(body, { signature: 'v1=' + '0'.repeat(64) })).toEqual({ status: 401, body: { error: 'bad signature' } });
    expect(await post(body, { secret: 'another_secret_0123456789' })).toEqual({ status: 401, body: { error: 'bad signature' } });
    // The signature covers the body: a body changed after signing is refused.
    const tampered = await fetch(`${app.url}/billing/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'billing-timestamp': String(ts), 'billing-signature': signWebhook(SECRET, ts, body) },
      body: body.replace('SUSPENDED', 'PAST_DUE'),
    });
    expect(tampered.status).toBe(401);
    const unsigned = await fetch(`${app.url}/billing/webhook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(unsigned.status).toBe(401);
    // Ten seconds past either edge of the ±300 s window: `now()` drops the second's fraction the
    // server's clock keeps, and a slow machine takes time before the server reads its clock, so a
    // timestamp one second outside could arrive inside (it did, once, in CI).
    expect(await post(body, { timestamp: now() - 310 })).toEqual({ status: 401, body: { error: 'stale timestamp' } });
    expect(await post(body, { timestamp: now() + 310 })).toEqual({ status: 401, body: { error: 'stale timestamp' } });
    expect((await subscriptionRow(app, org.id)).status).toBe('ACTIVE');
    expect((await subscriptionEvents(app, org.id)).filter((e) => e.action === 'subscription.status_changed')).toEqual([]);
    // Within the window it is accepted.
    expect((await post(body, { timestamp: ts - 200 })).status).toBe(200);
  });

  it('processes an event id once: a replay answers 200 duplicate and changes nothing', async () => {
    const { org } = await activeOrganization();
    const first = event(org.id, 'PAST_DUE');
    expect((await post(first)).body).toEqual({ result: 'applied', status: 'PAST_DUE' });
    await setSubscription(app, org.id, `status = 'ACTIVE'`);
    // The same event again (freshly signed, so only the id protects): no second transition.
    expect(await post(first)).toEqual({ status: 200, body: { result: 'duplicate' } });
    expect((await subscriptionRow(app, org.id)).status).toBe('ACTIVE');
    expect((await subscriptionEvents(app, org.id)).filter((e) => e.action === 'subscription.status_changed')).toHaveLength(1);
    expect(await readAll(app, `SELECT event_id FROM billing_webhook_events WHERE organization_id = $1`, [org.id])).toEqual([{ event_id: first.id }]);
  });

  it('answers 404 for an unknown organization, 400 for a malformed event, 409 for a move the status does not allow (and records no event id then)', async () => {
    expect(await post(event(randomUUID(), 'PAST_DUE'))).toEqual({ status: 404, body: { error: 'unknown organization' } });
    const { org } = await activeOrganization();
    expect((await post({ ...event(org.id, 'PAST_DUE'), organizationId: 'nope' })).status).toBe(400);
    expect((await post({ ...event(org.id, 'EXPIRED') })).status).toBe(400);
    expect((await post({ ...event(org.id, 'PAST_DUE'), type: 'invoice.paid' })).status).toBe(400);
    expect((await post('not json')).status).toBe(400);
    // A cancelled (EXPIRED) subscription cannot be made ACTIVE by the provider.
    await setSubscription(app, org.id, `status = 'EXPIRED'`);
    const refused = event(org.id, 'ACTIVE');
    expect(await post(refused)).toEqual({ status: 409, body: { error: 'subscription status EXPIRED cannot become ACTIVE' } });
    expect(await readAll(app, `SELECT event_id FROM billing_webhook_events WHERE organization_id = $1`, [org.id])).toEqual([]);
    // The same status again is a no-op that is still recorded.
    await setSubscription(app, org.id, `status = 'PAST_DUE'`);
    expect((await post(event(org.id, 'PAST_DUE'))).body).toEqual({ result: 'unchanged', status: 'PAST_DUE' });
  });
});

describe('without BILLING_WEBHOOK_SECRET', () => {
  it('answers 404', async () => {
    // The same route of an app configured without the secret.
    const original = app.config.billingWebhookSecret;
    (app.config as { billingWebhookSecret?: string }).billingWebhookSecret = undefined;
    try {
      const { org } = await activeOrganization();
      expect(await post(event(org.id, 'SUSPENDED'))).toEqual({ status: 404, body: { error: 'not found' } });
      expect((await subscriptionRow(app, org.id)).status).toBe('ACTIVE');
    } finally {
      (app.config as { billingWebhookSecret?: string }).billingWebhookSecret = original;
    }
  });

  it('answers a database outage with a JSON 503 carrying the request id (never an HTML page)', async () => {
    const other = await startTestApp({ env: { BILLING_WEBHOOK_SECRET: SECRET } });
    try {
      const org = await createOrganization(other, uniqueEmail('hook-outage'));
      await other.db.close();
      const raw = JSON.stringify(event(org.id, 'PAST_DUE'));
      const timestamp = now();
      const res = await fetch(`${other.url}/billing/webhook`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'billing-timestamp': String(timestamp), 'billing-signature': signWebhook(SECRET, timestamp, raw), 'x-request-id': 'hook-outage-1' },
        body: raw,
      });
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(await res.json()).toEqual({
        errors: [{ message: 'The database is unavailable; try again shortly', extensions: { code: 'INTERNAL_SERVER_ERROR', reason: 'DATABASE_UNAVAILABLE', requestId: 'hook-outage-1' } }],
      });
    } finally {
      await other.close();
    }
  });
});
