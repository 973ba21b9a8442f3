/**
 * OpenTelemetry tracing: HTTP → Express (routes other than GraphQL's POSTs) → GraphQL → SQL spans, exported over OTLP.
 *
 * Off unless OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; then
 * nothing of OpenTelemetry is even loaded. When on, it must run before http, express, graphql
 * and pg are first required, since the instrumentations hook `require`: main.ts imports this
 * module first, and `node --require ./dist/src/telemetry.js …` works as well (started once).
 * Everything else follows the standard OTEL_* variables (protocol, headers, sampler,
 * OTEL_SERVICE_NAME, OTEL_SDK_DISABLED…). An incoming W3C `traceparent` is continued.
 */
import type { NodeSDK } from '@opentelemetry/sdk-node';
import type { Span } from '@opentelemetry/api';
// Types and pure functions only: nothing instrumented is loaded before the SDK starts.
import { isGraphqlPost, pathOf } from './http/edge';

type Env = Record<string, string | undefined>;

const set = (env: Env, name: string): boolean => (env[name] ?? '').trim() !== '';

/** Whether tracing is asked for: an OTLP endpoint is configured (an empty variable counts as unset). */
export function tracingEnabled(env: Env = process.env): boolean {
  return set(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') || set(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
}

/** Paths probed or scraped many times a minute: no spans. */
const UNTRACED_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * The statements that open a request's transaction carry their arguments inline (principal,
 * email: `BEGIN; EXECUTE name('…', '…')`, after `PREPARE name AS …;` the first time on a
 * connection; see Database.statementSender's beginWith): those literals are masked in the span.
 * Every other statement has `$n` placeholders and no values in its text.
 */
const OPENING = /(?:^|; )BEGIN; EXECUTE /;
export function maskedStatement(text: string): string {
  return OPENING.test(text) ? text.replace(/E?'(?:[^'\\]|''|\\.)*'/g, "'?'") : text;
}

const STATE = Symbol.for('tenant-service.telemetry');
type State = { sdk?: NodeSDK };
const state = ((globalThis as Record<symbol, State | undefined>)[STATE] ??= {});

/** Starts the SDK with the HTTP, Express, GraphQL and pg instrumentations, once per process. Returns whether tracing is on. */
export function startTelemetry(env: Env = process.env): boolean {
  if (state.sdk) return true;
  if (!tracingEnabled(env)) return false;
  // Traces only: metrics are served by /metrics and logs go to stdout, unless asked otherwise.
  if (!set(env, 'OTEL_METRICS_EXPORTER')) env.OTEL_METRICS_EXPORTER = 'none';
  if (!set(env, 'OTEL_LOGS_EXPORTER')) env.OTEL_LOGS_EXPORTER = 'none';
  /* eslint-disable @typescript-eslint/no-require-imports -- loaded only when tracing is on, synchronously, before the instrumented modules */
  const { NodeSDK: SDK, tracing, api } = require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http') as typeof import('@opentelemetry/instrumentation-http');
  const { ExpressInstrumentation, ExpressLayerType } = require('@opentelemetry/instrumentation-express') as typeof import('@opentelemetry/instrumentation-express');
  const { GraphQLInstrumentation } = require('@opentelemetry/instrumentation-graphql') as typeof import('@opentelemetry/instrumentation-graphql');
  const { PgInstrumentation } = require('@opentelemetry/instrumentation-pg') as typeof import('@opentelemetry/instrumentation-pg');
  /* eslint-enable @typescript-eslint/no-require-imports */
  // A trace starts at an incoming request (or the gateway's traceparent): the GraphQL parses of
  // schema building at start-up and statements outside requests make no traces of their own.
  // OTEL_TRACES_SAMPLER replaces this (e.g. a ratio).
  const requestsOnly = new tracing.ParentBasedSampler({
    root: {
      shouldSample: (_context, _traceId, _name, kind) => ({ decision: kind === api.SpanKind.SERVER ? tracing.SamplingDecision.RECORD_AND_SAMPLED : tracing.SamplingDecision.NOT_RECORD }),
      toString: () => 'RequestsOnly',
    },
  });
  const sdk = new SDK({
    ...(set(env, 'OTEL_SERVICE_NAME') ? {} : { serviceName: 'tenant-service' }),
    ...(set(env, 'OTEL_TRACES_SAMPLER') ? {} : { sampler: requestsOnly }),
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => UNTRACED_PATHS.has(pathOf(req.url)),
        // A GET query's text and variables travel in the query string: never recorded (like the request log).
        startIncomingSpanHook: (req) => ((req.url ?? '').includes('?') ? { 'url.query': '[redacted]' } : {}),
        // GraphQL's POSTs skip Express (src/http/edge.ts), whose instrumentation gives the other
        // routes their name and http.route: named here, as Express named them.
        requestHook: (span: Span, request) => {
          // An incoming request has a url (an outgoing one, a path).
          if ('url' in request && isGraphqlPost(request)) {
            span.updateName('POST /graphql');
            span.setAttribute('http.route', '/graphql');
          }
        },
      }),
      // Middleware and request-handler spans; the routers a request only passes through (health, metrics) make none.
      new ExpressInstrumentation({ ignoreLayersType: [ExpressLayerType.ROUTER] }),
      // Parse, validate and execute spans; no span per resolved field (the cost would grow with the response).
      // Literal values in the recorded document are masked and variables are not recorded (allowValues off).
      new GraphQLInstrumentation({ ignoreResolveSpans: true, allowValues: false }),
      new PgInstrumentation({
        // Statements outside a traced request (migrations, jobs) make no orphan traces.
        requireParentSpan: true,
        enhancedDatabaseReporting: false,
        requestHook: (span: Span, { query }) => {
          if (query.text && OPENING.test(query.text)) span.setAttribute('db.query.text', maskedStatement(query.text));
        },
      }),
    ],
  });
  sdk.start();
  state.sdk = sdk;
  return true;
}

/** Flushes the spans still buffered and stops the SDK (bounded: a missing collector never holds up shutdown). */
export async function shutdownTelemetry(timeoutMs = 5000): Promise<void> {
  const sdk = state.sdk;
  if (!sdk) return;
  state.sdk = undefined;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    sdk.shutdown().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
}

startTelemetry();
