import pino from 'pino';
import type { RateLimitIdentity } from '../../src/auth/principal';
import type { Database } from '../../src/database/database';
import type { NamedScope } from '../../src/ratelimit/attribution';
import { ATTRIBUTION_MS, END_MARGIN_MS, MAX_LEASE, RateLimiter, type RateVerdict } from '../../src/ratelimit/rate-limiter';

/**
 * The rate limiter's leases (src/ratelimit/rate-limiter.ts) against a counter that behaves like
 * `app_rate_limit_hit` (migration 1766000000000): `hits = hits + p_count`, atomic, shared by every
 * instance, one bucket per principal, retry_after from a clock the test moves. What must hold:
 * never more than the limit served between all instances, exactly the limit from one instance,
 * exact X-RateLimit-Remaining from one instance, and far fewer statements than requests.
 */
class Counter {
  hits = new Map<string, number>();
  statements = 0;
  /** Organization → its plan's limit (null: unlimited); a scope naming none of them counts in the user bucket. */
  organizations = new Map<string, number | null>();
  /** Answers held back (concurrent statements): released by `flush`, in any order. */
  held: Array<() => void> = [];
  hold = false;
  constructor(private readonly clock: { now: number }) {}

  /** What the limiter's `sideStatement` sends: the nine parameters of app_rate_limit_hit. */
  call = (_sql: string, params: unknown[]): Promise<unknown[]> => {
    this.statements += 1;
    const [key, , , , ids, userLimit, , , count] = params as [string, null, null, string[], string[], number, null, null, number];
    const windowStart = this.clock.now - (this.clock.now % 60_000);
    const named = [...new Set(ids.filter((id) => this.organizations.has(id)))].sort();
    const buckets: Array<[string, string | null, number | null]> = named.length === 0 ? [[key, null, userLimit]] : named.map((o) => [`${key}@${o}`, o, this.organizations.get(o)!]);
    const rows = buckets.map(([bucket, organization, limit]) => {
      const stored = `${bucket}#${windowStart}`;
      const hits = (this.hits.get(stored) ?? 0) + count;
      this.hits.set(stored, hits);
      const msLeft = windowStart + 60_000 - this.clock.now;
      return { organization_id: organization, bucket, window_start: String(windowStart), hits, max_hits: limit, retry_after: Math.max(1, Math.ceil(msLeft / 1000)), ms_left: msLeft };
    });
    if (!this.hold) return Promise.resolve(rows);
    return new Promise((resolve) => this.held.push(() => resolve(rows)));
  };

  flush(order: 'sent' | 'reversed' = 'sent'): void {
    const released = this.held.splice(0);
    for (const release of order === 'sent' ? released : released.reverse()) release();
  }

  counted(bucket: string): number {
    const windowStart = this.clock.now - (this.clock.now % 60_000);
    return this.hits.get(`${bucket}#${windowStart}`) ?? 0;
  }
}

const identity = (subject: string): RateLimitIdentity => ({ key: `user:${subject}`, subject, organizationId: null, apiKey: null });
const silent = pino({ level: 'silent' });

function instance(counter: Counter, limit: number, clock: { now: number }): RateLimiter {
  const db = { sideStatement: counter.call } as unknown as Database;
  return new RateLimiter(db, limit, silent, () => clock.now);
}

async function send(limiter: RateLimiter, n: number, subject = 'ada'): Promise<RateVerdict[]> {
  const verdicts: RateVerdict[] = [];
  for (let i = 0; i < n; i++) verdicts.push((await limiter.hit(identity(subject), []))!);
  return verdicts;
}

describe('rate-limit leases', () => {
  // 10 s into a minute: far from its end.
  const start = 1_800_000_000_000 - (1_800_000_000_000 % 60_000) + 10_000;

  it('far from the limit, one instance counts in blocks: exact remaining on every response, a statement per lease only', async () => {
    const clock = { now: start };
    const counter = new Counter(clock);
    const limiter = instance(counter, 1000, clock);
    const verdicts = await send(limiter, 200);
    expect(verdicts.every((v) => !v.refused)).toBe(true);
    expect(verdicts.map((v) => v.remaining)).toEqual(Array.from({ length: 200 }, (_, i) => 999 - i));
    // The first request is counted alone (nothing known of it yet); then leases of MAX_LEASE.
    expect(counter.statements).toBe(1 + Math.ceil(199 / MAX_LEASE));
    expect(counter.statements).toBeLessThan(10);
  });

  it('near the limit it counts one by one: one instance serves exactly the limit, then refuses with RATE_LIMITED data', async () => {
    const clock = { now: start };
    const counter = new Counter(clock);
    const limiter = instance(counter, 30, clock);
    const verdicts = await send(limiter, 40);
    expect(verdicts.filter((v) => !v.refused)).toHaveLength(30);
    expect(verdicts.slice(0, 30).every((v) => !v.refused)).toBe(true);
    expect(verdicts.map((v) => v.remaining)).toEqual([...Array.from({ length: 30 }, (_, i) => 29 - i), ...Array(10).fill(0)]);
    for (const v of verdicts.slice(30)) expect(v).toMatchObject({ refused: true, limit: 30, remaining: 0, retryAfterSeconds: 50 });
    // The last eight (limit / 8 < 1) went to the database one by one, like every refusal.
    expect(counter.statements).toBeGreaterThanOrEqual(8 + 10);
  });

  it('two instances on one counter never serve more than the limit between them', async () => {
    for (const limit of [7, 40, 123, 600]) {
      const clock = { now: start };
      const counter = new Counter(clock);
      const a = instance(counter, limit, clock);
      const b = instance(counter, limit, clock);
      let served = 0;
      // Uneven interleaving: a takes three turns for each of b's.
      for (let i = 0; i < 2 * limit; i++) {
        const verdict = (await (i % 4 === 3 ? b : a).hit(identity('ada'), []))!;
        if (!verdict.refused) served += 1;
      }
      expect(served).toBeLessThanOrEqual(limit);
      // What was not served is held in the other instance's last lease, never more than an eighth of the limit.
      expect(served).toBeGreaterThanOrEqual(limit - Math.max(1, Math.floor(limit / 8)));
    }
  });

  it('concurrent first requests each count one: exactly the limit served, leftovers of concurrent leases are used, not lost', async () => {
    const clock = { now: start };
    const counter = new Counter(clock);
    const limiter = instance(counter, 10, clock);
    counter.hold = true;
    const pending = Array.from({ length: 15 }, () => limiter.hit(identity('ada'), []));
    counter.flush();
    const verdicts = (await Promise.all(pending)).map((v) => v!);
    expect(verdicts.filter((v) => !v.refused)).toHaveLength(10);

    // Concurrent leases of a bucket far from its limit add up; every reserved request is served before a new statement.
    const big = new Counter(clock);
    const far = instance(big, 1000, clock);
    await far.hit(identity('bob'), []);
    big.hold = true;
    const leases = Array.from({ length: 3 }, () => far.hit(identity('bob'), []));
    // Answered in the reverse order: the last answer read holds the lowest count.
    big.flush('reversed');
    await Promise.all(leases);
    big.hold = false;
    const before = big.statements;
    const reserved = [...big.hits.values()][0]!;
    const local = await send(far, reserved - 4, 'bob');
    expect(big.statements).toBe(before);
    expect(local.at(-1)!.remaining).toBe(1000 - reserved);
  });

  it('a new minute starts new leases; an attribution is asked again after ATTRIBUTION_MS, counting one request only', async () => {
    const clock = { now: start };
    const counter = new Counter(clock);
    const limiter = instance(counter, 1000, clock);
    await send(limiter, 3);
    expect(counter.statements).toBe(2);
    // Half a second before the minute's end the attribution (ATTRIBUTION_MS) is due again: one request counted.
    clock.now = start + 49_500;
    const late = await send(limiter, 1);
    expect(counter.statements).toBe(3);
    expect(counter.counted('user:ada')).toBe(1 + MAX_LEASE + 1);
    expect(late[0]!.retryAfterSeconds).toBe(1);
    clock.now = start + 51_000;
    const next = await send(limiter, 2);
    expect(next.map((v) => v.remaining)).toEqual([999, 998]);
    expect(counter.statements).toBe(4);
    clock.now += ATTRIBUTION_MS + 1;
    const hitsBefore = [...counter.hits.values()].at(-1)!;
    await send(limiter, 1);
    expect(counter.statements).toBe(5);
    expect([...counter.hits.values()].at(-1)! - hitsBefore).toBe(1);
  });

  it('fails open: a counter that cannot count serves the request (null verdict)', async () => {
    const db = { sideStatement: () => Promise.reject(new Error('counter down')) } as unknown as Database;
    const limiter = new RateLimiter(db, 5, silent);
    await expect(limiter.hit(identity('ada'), [])).resolves.toBeNull();
  });
  const organization = (id: string) => ({ kind: 'organization' as const, id });
  const slug = (id: string) => ({ kind: 'organization_slug' as const, id });

  async function served(limiter: RateLimiter, n: number, scopes: NamedScope[], clock?: { now: number }, step = 0): Promise<RateVerdict[]> {
    const verdicts: RateVerdict[] = [];
    for (let i = 0; i < n; i++) {
      if (clock) clock.now += step;
      verdicts.push((await limiter.hit(identity('ada'), scopes))!);
    }
    return verdicts;
  }

  it('across a minute boundary: a lease of the past minute is never served in the next one, nor added to its lease', async () => {
    const minute = start - 10_000;
    const clock = { now: minute + 10_000 };
    const counter = new Counter(clock);
    const limiter = instance(counter, 800, clock);
    await send(limiter, 1);
    // A lease taken 1 ms before 55 s, answered 61 ms later: served until 59 s at most.
    clock.now = minute + 54_999;
    counter.hold = true;
    const leased = limiter.hit(identity('ada'), []);
    clock.now = minute + 55_060;
    counter.flush();
    counter.hold = false;
    await leased;
    // Just after the minute: a request never seen before lands in the same bucket, then many requests.
    clock.now = minute + 60_001;
    let next = (await served(limiter, 1, [slug('nothing')])).filter((v) => !v.refused).length;
    next += (await served(limiter, 900, [], clock, 5)).filter((v) => !v.refused).length;
    expect(next).toBe(800);
    // Every request of the minute counted once, refusals too, and no reservation left unserved.
    expect(counter.counted("user:ada")).toBe(901);
  });

  it('an answer of the past minute arriving after one of the next serves its own request only', async () => {
    const minute = start - 10_000;
    const clock = { now: minute + 10_000 };
    const counter = new Counter(clock);
    const limiter = instance(counter, 800, clock);
    await send(limiter, 1);
    counter.hold = true;
    clock.now = minute + 58_000;
    const stale = limiter.hit(identity('ada'), []);
    clock.now = minute + 60_500;
    const fresh = limiter.hit(identity('ada'), []);
    counter.flush('reversed');
    counter.hold = false;
    expect((await stale)!.refused).toBe(false);
    let inNextMinute = (await fresh)!.refused ? 0 : 1;
    inNextMinute += (await served(limiter, 900, [], clock, 5)).filter((v) => !v.refused).length;
    expect(inNextMinute).toBe(800);
  });

  it("in a minute's last moments requests are counted one by one: one instance still serves exactly the limit", async () => {
    const minute = start - 10_000;
    const clock = { now: minute + 30_000 };
    const counter = new Counter(clock);
    const limiter = instance(counter, 100, clock);
    const early = await served(limiter, 60, [], clock, 100);
    const statements = counter.statements;
    // The last END_MARGIN_MS of the minute: no lease is served, each request is counted alone.
    clock.now = minute + 60_000 - END_MARGIN_MS + 1;
    const late = await served(limiter, 80, [], clock, 0.1);
    expect(counter.statements - statements).toBe(80);
    const verdicts = [...early, ...late];
    expect(verdicts.filter((v) => !v.refused)).toHaveLength(100);
    expect(verdicts.slice(100).every((v) => v.refused)).toBe(true);
    const remaining = verdicts.map((v) => v.remaining!);
    expect(remaining.every((r, i) => i === 0 || r < remaining[i - 1]! || r === 0)).toBe(true);
  });

  it('a refused request still counts in the other organizations it names', async () => {
    const clock = { now: start };
    const counter = new Counter(clock);
    counter.organizations.set('A', 2).set('B', 100);
    const limiter = instance(counter, 1000, clock);
    const both = await served(limiter, 10, [organization('A'), organization('B')]);
    expect(both.filter((v) => !v.refused)).toHaveLength(2);
    const onlyB = await served(limiter, 120, [organization('B')]);
    expect(onlyB[0]!.remaining).toBe(89);
    expect(onlyB.filter((v) => !v.refused)).toHaveLength(90);
  });

  it('what a request names is one unambiguous key: a slug holding separators is not another set of names', async () => {
    const clock = { now: start };
    const counter = new Counter(clock);
    counter.organizations.set('B', 5);
    const limiter = instance(counter, 1000, clock);
    // Counted in the user bucket (the slug names nothing), which gets a lease.
    await served(limiter, 2, [slug('none,organization:B')]);
    const naming = await served(limiter, 10, [slug('none'), organization('B')]);
    expect(naming.filter((v) => !v.refused)).toHaveLength(5);
  });
});
