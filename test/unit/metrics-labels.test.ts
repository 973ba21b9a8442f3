import { Metrics, outcomeOf } from '../../src/http/metrics';

const idlePool = () => ({ total: 1, idle: 1, waiting: 0, max: 1 });

describe('metric labels stay bounded whatever clients send', () => {
  it('keeps the first N safe operation names, then counts new ones as other', () => {
    const metrics = new Metrics(idlePool, 3);
    expect(['A', 'B', 'C'].map((n) => metrics.operationLabel(n))).toEqual(['A', 'B', 'C']);
    expect(metrics.operationLabel('D')).toBe('other');
    // Names already labelled keep their label.
    expect(metrics.operationLabel('B')).toBe('B');
  });

  it('anonymous, unresolved, oversized and malformed names', () => {
    const metrics = new Metrics(idlePool, 100);
    expect(metrics.operationLabel(null)).toBe('anonymous');
    expect(metrics.operationLabel(undefined)).toBe('unknown');
    expect(metrics.operationLabel('x'.repeat(64))).toBe('x'.repeat(64));
    expect(metrics.operationLabel('x'.repeat(65))).toBe('other');
    expect(metrics.operationLabel('a"b\n')).toBe('other');
  });

  it('an error code that is not UPPER_SNAKE is counted as other', async () => {
    const metrics = new Metrics(idlePool, 100);
    metrics.observe({ path: '/graphql', method: 'POST', status: 200, durationSeconds: 0.01, operation: 'Q', errors: ['undefined', 'NOT_FOUND'] });
    const text = await metrics.registry.metrics();
    expect(text).toContain('graphql_errors_total{code="other"} 1');
    expect(text).toContain('graphql_errors_total{code="NOT_FOUND"} 1');
    expect(text).toContain('graphql_requests_total{operation="Q",outcome="error"} 1');
  });
});

describe('outcome', () => {
  it.each([
    [200, [], 'ok'],
    [200, ['FORBIDDEN'], 'error'],
    [200, ['RATE_LIMITED'], 'refused'],
    [400, ['QUERY_TOO_COMPLEX'], 'refused'],
    [401, ['UNAUTHENTICATED'], 'refused'],
    [413, ['PAYLOAD_TOO_LARGE'], 'refused'],
    [500, ['INTERNAL_SERVER_ERROR'], 'error'],
    [503, ['INTERNAL_SERVER_ERROR'], 'unavailable'],
  ] as const)('HTTP %i with %j is %s', (status, errors, outcome) => {
    expect(outcomeOf(status, errors)).toBe(outcome);
  });
});
