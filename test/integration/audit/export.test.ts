import { randomUUID } from 'node:crypto';
import { ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll } from '../../helpers/db';
import { addMember, createOrganization, type CreatedOrganization, setFeatureFlag, uniqueEmail } from '../../helpers/factories';
import { createKey, exchange } from '../api-key/api-key-helpers';
import { AUDIT_QUERY, type AuditNode, seedEvents } from './helpers';

/**
 * SPEC §5 Audit, export: `GET /organizations/{id}/audit-events/export` — NDJSON and CSV content,
 * the same filters as the query, and the HTTP semantics (401/404/403/400 with a JSON `code`).
 * The streaming-memory test is export-memory.test.ts (a real service process).
 */
let app: TestApp;
const owner = uniqueEmail('export-owner');
const admin = uniqueEmail('export-admin');
const member = uniqueEmail('export-member');
const outsider = uniqueEmail('export-outsider');
let org: CreatedOrganization;
let other: CreatedOrganization;
let all: AuditNode[];

const base = Date.now() - 3 * 24 * 3600_000;
const at = (minutes: number) => new Date(base + minutes * 60_000);

/** Names a spreadsheet would run as formulas, or that break naive CSV. */
const TRICKY = ['=HYPERLINK("http://evil.example","x")', '+1+1', '-2', '@SUM(A1)', 'comma, "quote"', 'line\nbreak', 'tab\tinside', 'plain ünïcödé'];

async function exportAs(as: string | null, organizationId: string, query = '', headers: Record<string, string> = {}) {
  const token = as ? await app.token(as) : null;
  const res = await fetch(`${app.url}/organizations/${organizationId}/audit-events/export${query}`, {
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Every event the GraphQL API lists for the filter (the export's oracle). */
async function listed(filter: Record<string, unknown> | null): Promise<AuditNode[]> {
  const seen: AuditNode[] = [];
  let after: string | null = null;
  for (;;) {
    const data: { auditEvents: { nodes: AuditNode[]; pageInfo: { hasNextPage: boolean; endCursor: string } } } = ok(
      await app.gql(AUDIT_QUERY.replace('resourceName changes', 'resourceName changes ipAddress userAgent requestId'), { org: org.id, filter, first: 100, after }, { as: owner }),
    );
    seen.push(...data.auditEvents.nodes);
    if (!data.auditEvents.pageInfo.hasNextPage) return seen;
    after = data.auditEvents.pageInfo.endCursor;
  }
}

/** RFC 4180 parser (quoted cells, doubled quotes, CRLF rows) — independent of the service's writer. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    }
    else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i += 1;
    } else cell += c;
  }
  if (cell !== '' || row.length > 0) throw new Error('CSV does not end with CRLF');
  return rows;
}

beforeAll(async () => {
  app = await startTestApp();
  org = await createOrganization(app, owner);
  other = await createOrganization(app, outsider);
  await addMember(app, org.id, admin, 'admin');
  await addMember(app, org.id, member, 'member');
  await seedEvents(
    app,
    org.id,
    Array.from({ length: 40 }, (_, i) => ({
      occurredAt: at(i),
      action: i % 2 === 0 ? 'workspace.updated' : 'member.role_changed',
      actorId: randomUUID(),
      actorEmail: `a${i}@example.com`,
      workspaceId: i % 3 === 0 ? org.defaultWorkspaceId : null,
      resourceType: 'workspace',
      resourceId: `res-${i % 4}`,
      resourceName: TRICKY[i % TRICKY.length]!,
      changes: i % 2 === 0 ? { changedFields: ['name'], oldValues: { name: 'a "b"' }, newValues: { name: '=c' } } : null,
      metadata: { i, nested: { list: [1, 'two'] } },
    })),
  );
  await seedEvents(app, other.id, [{ occurredAt: at(1), action: 'workspace.updated', resourceType: 'workspace', resourceName: 'theirs' }]);
  all = await listed(null);
});
afterAll(async () => {
  await app?.close();
});

describe('NDJSON', () => {
  it('streams every event newest first, one JSON object per line with the fields of AuditEvent, as an attachment', async () => {
    const res = await exportAs(owner, org.id, '?format=ndjson');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    expect(res.headers.get('content-disposition')).toMatch(new RegExp(`^attachment; filename="audit-events-${org.slug}-\\d{8}T\\d{6}Z\\.ndjson"$`));
    expect(res.text.endsWith('\n')).toBe(true);
    const lines = res.text.slice(0, -1).split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual(all);
    expect(Object.keys(lines[0])).toEqual(['id', 'occurredAt', 'action', 'actor', 'organizationId', 'workspaceId', 'resourceType', 'resourceId', 'resourceName', 'changes', 'metadata', 'ipAddress', 'userAgent', 'requestId']);
    expect(lines.some((l) => l.resourceName === 'theirs')).toBe(false);
  });

  it('is the default format; the admin may export too', async () => {
    const res = await exportAs(admin, org.id);
    expect(res.status).toBe(200);
    expect(res.text.trim().split('\n')).toHaveLength(all.length);
  });

  it.each([
    ['since', `?since=${at(10).toISOString()}`, { since: at(10).toISOString() }],
    ['until', `?until=${at(10).toISOString()}`, { until: at(10).toISOString() }],
    ['actions, comma-separated', '?actions=member.role_changed,organization.created', { actions: ['member.role_changed', 'organization.created'] }],
    ['actions, repeated', '?actions=member.role_changed&actions=organization.created', { actions: ['member.role_changed', 'organization.created'] }],
    ['every filter at once', `?since=${at(5).toISOString()}&until=${at(30).toISOString()}&actions=workspace.updated&resourceId=res-2&workspaceId=__ws__`, { since: at(5).toISOString(), until: at(30).toISOString(), actions: ['workspace.updated'], resourceId: 'res-2', workspaceId: '__ws__' }],
  ])('filters by %s exactly like the GraphQL query', async (_name, query, filter) => {
    const ws = org.defaultWorkspaceId;
    const res = await exportAs(owner, org.id, query.replace('__ws__', ws));
    expect(res.status).toBe(200);
    const expected = await listed(JSON.parse(JSON.stringify(filter).replace('__ws__', ws)));
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(all.length);
    expect(res.text === '' ? [] : res.text.trim().split('\n').map((l) => JSON.parse(l))).toEqual(expected);
  });

  it('an export nothing matches is an empty 200', async () => {
    const res = await exportAs(owner, org.id, '?actions=nothing.matches');
    expect([res.status, res.text]).toEqual([200, '']);
  });
});

describe('CSV', () => {
  it('has a header row, then one properly escaped row per event; changes and metadata as JSON text; formulas defused', async () => {
    const res = await exportAs(owner, org.id, '?format=csv');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="audit-events-.+\.csv"$/);
    const [header, ...rows] = parseCsv(res.text);
    expect(header).toEqual([
      'id', 'occurredAt', 'action', 'actorType', 'actorId', 'actorEmail', 'actorName', 'organizationId', 'workspaceId',
      'resourceType', 'resourceId', 'resourceName', 'changes', 'metadata', 'ipAddress', 'userAgent', 'requestId',
    ]);
    expect(rows).toHaveLength(all.length);
    const defuse = (v: string | null) => (v === null ? '' : /^[=+\-@\t\r]/.test(v) ? `'${v}` : v);
    rows.forEach((row, i) => {
      const e = all[i]!;
      expect(row).toEqual([
        e.id, e.occurredAt, e.action, e.actor.type, defuse(e.actor.id), defuse(e.actor.email), defuse(e.actor.name), e.organizationId, e.workspaceId ?? '',
        e.resourceType, defuse(e.resourceId), defuse(e.resourceName), row[12], row[13], defuse(e.ipAddress ?? null), defuse(e.userAgent ?? null), defuse(e.requestId ?? null),
      ]);
      expect(row[12] === '' ? null : JSON.parse(row[12]!)).toEqual(e.changes);
      expect(row[13] === '' ? null : JSON.parse(row[13]!)).toEqual(e.metadata);
    });
    // Every tricky name came through: formulas prefixed with a quote, the rest verbatim (quotes, commas, line breaks).
    const names = new Set(rows.map((r) => r[11]));
    for (const name of TRICKY) expect(names.has(defuse(name))).toBe(true);
    expect(names.has(`'=HYPERLINK("http://evil.example","x")`)).toBe(true);
    expect(names.has('comma, "quote"')).toBe(true);
  });
});

describe('HTTP semantics (SPEC §5): status and a JSON body carrying code', () => {
  const expectRefusal = (res: { status: number; text: string; headers: Headers }, status: number, code: string, extra: Record<string, unknown> = {}) => {
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(JSON.parse(res.text)).toMatchObject({ code, ...extra });
  };

  it('401 without a bearer, with a bad one, or with a malformed header', async () => {
    expectRefusal(await exportAs(null, org.id), 401, 'UNAUTHENTICATED');
    expectRefusal(await exportAs(null, org.id, '', { authorization: 'Bearer not.a.token' }), 401, 'UNAUTHENTICATED');
    expectRefusal(await exportAs(null, org.id, '', { authorization: 'Basic abc' }), 401, 'UNAUTHENTICATED');
  });

  it('404 for an organization the caller cannot see, one that does not exist, or a malformed id — the same body', async () => {
    const bodies = [];
    for (const id of [other.id, randomUUID(), 'not-a-uuid']) {
      const res = await exportAs(owner, id);
      expectRefusal(res, 404, 'NOT_FOUND', { message: 'Organization not found' });
      const { requestId: _r, ...body } = JSON.parse(res.text);
      bodies.push(body);
    }
    expect(new Set(bodies.map((b) => JSON.stringify(b))).size).toBe(1);
  });

  it('403 FORBIDDEN without org.audit.export (a member)', async () => {
    expectRefusal(await exportAs(member, org.id), 403, 'FORBIDDEN');
  });

  it('403 FEATURE_DISABLED when the plan lacks audit_log_export (FREE) or an override switches it off', async () => {
    const freeOwner = uniqueEmail('free');
    const free = await createOrganization(app, freeOwner);
    ok(await app.gql(`mutation($org: ID!) { changePlan(organizationId: $org, plan: FREE) { id } }`, { org: free.id }, { as: freeOwner }));
    expectRefusal(await exportAs(freeOwner, free.id), 403, 'FEATURE_DISABLED', { feature: 'audit_log_export' });
    const offOwner = uniqueEmail('off');
    const off = await createOrganization(app, offOwner);
    await setFeatureFlag(app, off.id, 'audit_log_export', false, offOwner);
    expectRefusal(await exportAs(offOwner, off.id), 403, 'FEATURE_DISABLED', { feature: 'audit_log_export' });
  });

  it("403 MFA_REQUIRED inside an organization that requires MFA, for a token without it; with MFA the export works", async () => {
    const mfaOwner = uniqueEmail('mfa');
    const locked = await createOrganization(app, mfaOwner);
    const withMfa = await app.token(mfaOwner, { mfa: true });
    ok(await app.gql(`mutation($id: ID!) { updateOrganization(id: $id, input: { security: { requireMfa: true } }) { id } }`, { id: locked.id }, { token: withMfa }));
    expectRefusal(await exportAs(mfaOwner, locked.id), 403, 'MFA_REQUIRED');
    const res = await fetch(`${app.url}/organizations/${locked.id}/audit-events/export`, { headers: { authorization: `Bearer ${withMfa}` } });
    expect(res.status).toBe(200);
    expect((await res.text()).trim().split('\n').map((l) => JSON.parse(l).action)).toContain('organization.updated');
  });

  it.each([
    ['an unknown format', '?format=xml', 'format'],
    ['a bad date', '?since=yesterday', 'since'],
    ['since after until', `?since=${at(20).toISOString()}&until=${at(10).toISOString()}`, 'until'],
    ['a bad action', '?actions=DROP%20TABLE', 'actions'],
    ['an empty list of actions', '?actions=', 'actions'],
    ['a repeated format', '?format=csv&format=ndjson', 'format'],
    ['an unknown parameter', '?action=workspace.updated', 'action'],
    ['an unknown parameter holding a NUL', '?a%00=1', 'query'],
    ['a malformed workspace id', '?workspaceId=nope', 'workspaceId'],
    ['a NUL character', '?resourceId=a%00b', 'resourceId'],
  ])('400 BAD_USER_INPUT for %s, naming the parameter', async (_name, query, field) => {
    expectRefusal(await exportAs(owner, org.id, query), 400, 'BAD_USER_INPUT', { field });
  });

  it('API keys use the same path: with org.audit.export a key exports (directly and exchanged), without it FORBIDDEN, elsewhere NOT_FOUND', async () => {
    const withBearer = async (bearer: string, organizationId: string) => {
      const res = await fetch(`${app.url}/organizations/${organizationId}/audit-events/export`, { headers: { authorization: `Bearer ${bearer}` } });
      return { status: res.status, headers: res.headers, text: await res.text() };
    };
    const exporter = await createKey(app, org.id, ['org.view', 'org.audit.export'], { as: owner });
    const direct = await withBearer(exporter.secret, org.id);
    expect(direct.status).toBe(200);
    const lines = direct.text.trim().split('\n').map((l) => JSON.parse(l));
    // The export now also holds the api_key.created event written when the key was made.
    expect(lines.slice(1)).toEqual(all);
    expect(lines[0]).toMatchObject({ action: 'api_key.created', resourceId: exporter.id });
    expect((await withBearer(await exchange(app, exporter.secret), org.id)).status).toBe(200);
    const viewer = await createKey(app, org.id, ['org.view', 'org.audit.view'], { as: owner });
    expectRefusal(await withBearer(viewer.secret, org.id), 403, 'FORBIDDEN');
    expectRefusal(await withBearer(exporter.secret, other.id), 404, 'NOT_FOUND');
    expectRefusal(await withBearer(`${exporter.secret}x`, org.id), 401, 'UNAUTHENTICATED');
  });

  it('in the order of SPEC §6: 401 before 404 before 403 before 400', async () => {
    expectRefusal(await exportAs(null, randomUUID(), '?format=xml'), 401, 'UNAUTHENTICATED');
    expectRefusal(await exportAs(outsider, org.id, '?format=xml'), 404, 'NOT_FOUND');
    expectRefusal(await exportAs(member, org.id, '?format=xml'), 403, 'FORBIDDEN');
  });

  it('a refused export reads no event and writes nothing', async () => {
    const before = await readAll(app, `SELECT count(*)::int AS n FROM audit_events`);
    await exportAs(member, org.id);
    await exportAs(owner, org.id, '?format=xml');
    expect(await readAll(app, `SELECT count(*)::int AS n FROM audit_events`)).toEqual(before);
  });
});
