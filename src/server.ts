import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginInlineTraceDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { unwrapResolverError } from '@apollo/server/errors';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import express from 'express';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { InvalidTokenError, type TokenVerifier } from './auth/jwt';
import { ANONYMOUS, type Principal } from './auth/principal';
import { isServiceToken, type ServiceKeyring, serviceKeyring } from './auth/service-tokens';
import { hashApiKey, looksLikeApiKey } from './modules/api-key/api-key.types';
import { recordApiKeyUse } from './modules/api-key/api-key.usage';
import { AppError, isConnectionError, UnauthenticatedError } from './common/errors';
import { clientIp } from './common/ip';
import { type AppServices, RequestContext } from './context';
import { containsNul, inputGuardPlugin, withoutEchoedInput } from './graphql/input-guard';
import { compiledExecution } from './graphql/executor';
import { useSharedGatewayContext } from './graphql/gateway-context';
import { queryCostPlugin } from './graphql/query-cost';
import { corsMiddleware } from './http/cors';
import { type EdgeMiddleware, type EdgeRequest, type EdgeResponse, isGraphqlPost, runMiddlewares, searchOf, sendJson } from './http/edge';
import { graphqlHandler } from './http/graphql-http';
import { explorerRoutes } from './http/explorer';
import { healthRoutes } from './http/health';
import { jwksRoutes } from './http/jwks';
import { billingWebhookRoutes } from './http/billing-webhook';
import { auditExportRoutes } from './http/audit-export';
import { Metrics } from './http/metrics';
import { logDetails, requestLogger, requestLogOf, type RequestLogDetails, tokenRefusalReason, withRequestLog } from './http/request-log';
import { rateLimitPlugin } from './ratelimit/rate-limit.plugin';
import { RateLimiter } from './ratelimit/rate-limiter';
import { buildAppSchema } from './schema';
import { tracingEnabled } from './telemetry';

export interface ServerDeps extends AppServices {
  verifier: TokenVerifier;
}

/** Codes graphql-js and Apollo give to malformed requests: the client's fault, shown as they are. */
const REQUEST_ERROR_CODES = new Set(['GRAPHQL_PARSE_FAILED', 'GRAPHQL_VALIDATION_FAILED', 'BAD_USER_INPUT', 'BAD_REQUEST', 'OPERATION_RESOLUTION_FAILURE']);

/** What a client sees when the database cannot be reached (HTTP 503); a new object each time (the request id is added to it). */
const databaseUnavailable = (): GraphQLFormattedError => ({ message: 'The database is unavailable; try again shortly', extensions: { code: 'INTERNAL_SERVER_ERROR', reason: 'DATABASE_UNAVAILABLE' } });

/**
 * Lets the service's typed errors through and masks everything else as INTERNAL_SERVER_ERROR
 * (no SQL, stack or constraint name); the request id is added when the response is sent.
 * graphql-js's own request errors are shown without the client's value (it could be a secret).
 */
export function formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  const original = unwrapResolverError(error);
  if (original instanceof AppError) {
    const { http: _http, ...extensions } = formatted.extensions ?? {};
    return { ...formatted, extensions };
  }
  const code = formatted.extensions?.code;
  if (typeof code === 'string' && REQUEST_ERROR_CODES.has(code) && original instanceof GraphQLError) {
    const { stacktrace: _s, ...extensions } = formatted.extensions ?? {};
    return { ...formatted, message: withoutEchoedInput(formatted.message), extensions };
  }
  if (isConnectionError(original)) return { ...databaseUnavailable(), path: formatted.path };
  return { message: 'Internal server error', path: formatted.path, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
}

/**
 * Per GraphQL request: logs unexpected errors, finishes the request transaction before the body
 * goes out, sets the HTTP status, and hands operation, principal, error codes and statement
 * count to the request log line (src/http/request-log.ts), which is written once per request.
 */
function requestPlugin(deps: ServerDeps): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart({ contextValue }) {
      const log: RequestLogDetails = requestLogOf(contextValue) ?? {};
      /** A query (not a mutation): the transaction's COMMIT may be deferred when it wrote nothing. */
      let readOnly = false;
      return {
        async didResolveOperation({ operationName: name, operation }) {
          log.operation = name ?? null;
          readOnly = operation?.operation === 'query';
        },
        async didEncounterErrors({ errors }) {
          for (const error of errors) {
            const original = unwrapResolverError(error);
            if (!(original instanceof AppError) && !(typeof error.extensions?.code === 'string' && REQUEST_ERROR_CODES.has(error.extensions.code))) {
              deps.logger.error({ requestId: contextValue.requestId, err: original, path: error.path }, 'unexpected error');
            }
          }
        },
        async willSendResponse({ response }) {
          let failedCommit = false;
          let commitError: unknown;
          try {
            await contextValue.tx.finish(true, { deferrable: readOnly });
          } catch (error) {
            failedCommit = true;
            commitError = error;
            deps.logger.error({ requestId: contextValue.requestId, err: error }, 'request transaction failed to commit');
          }
          if (response.body.kind !== 'single') return;
          const result = response.body.singleResult;
          if (failedCommit) {
            result.data = null;
            // The connection was lost at COMMIT (a database restart): 503 like any other request of the outage.
            result.errors = [isConnectionError(commitError) ? databaseUnavailable() : { message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }];
          }
          const errors = result.errors ?? [];
          for (const e of errors) {
            if (e.extensions?.code === 'INTERNAL_SERVER_ERROR') (e.extensions as Record<string, unknown>).requestId = contextValue.requestId;
          }
          if (errors.some((e) => e.extensions?.reason === 'DATABASE_UNAVAILABLE')) response.http.status = 503;
          // The whole request was refused for want of a principal: HTTP 401.
          else if (errors.length > 0 && errors.every((e) => e.extensions?.code === 'UNAUTHENTICATED') && !result.data) response.http.status = 401;
          // An API key (or a token exchanged from one) that no longer authenticates: why, never the key.
          if (response.http.status === 401 && contextValue.principal.kind === 'apiKey') log.reason ??= 'API key not valid (unknown, revoked, expired or organization inactive)';
          // Lets developers (and the N+1 tests) see how many SQL statements a request cost.
          if (deps.config.nodeEnv !== 'production') response.http.headers.set('x-sql-statements', String(contextValue.tx.queryCount));
          // After the transaction ended: lastUsedAt on a unit of work of its own, coalesced (SPEC §2).
          const apiKey = contextValue.authenticatedApiKey();
          if (apiKey) recordApiKeyUse(deps.db, apiKey, deps.logger);
          log.principal = contextValue.principalId();
          log.errors = errors.map((e) => String(e.extensions?.code));
          log.queries = contextValue.tx.queryCount;
        },
      };
    },
  };
}

/**
 * The request's principal; a refused token throws UNAUTHENTICATED (401) and leaves the reason, never the token, for the log.
 * An API key (`tsk_…`) goes on as its hash, authenticated when the transaction opens; the service's
 * own access tokens are verified with its signing keys, people's tokens with the issuer's, through
 * the same verification path (src/auth/jwt.ts).
 */
async function principalFrom(authorization: string | undefined, verifier: TokenVerifier, keyring: ServiceKeyring, log: RequestLogDetails): Promise<Principal> {
  if (!authorization) return ANONYMOUS;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (!match) {
    log.reason = 'malformed header';
    log.errors = ['UNAUTHENTICATED'];
    throw new UnauthenticatedError('The Authorization header must be "Bearer <token>"', 401);
  }
  const bearer = match[1]!;
  if (looksLikeApiKey(bearer)) return { kind: 'apiKey', credential: { via: 'secret', hash: hashApiKey(bearer).toString('hex') } };
  try {
    if (isServiceToken(bearer)) return { kind: 'apiKey', credential: await keyring.verifier.verify(bearer) };
    return { kind: 'user', identity: await verifier.verify(bearer) };
  } catch (error) {
    if (error instanceof InvalidTokenError) {
      log.reason = tokenRefusalReason(error.message);
      log.errors = ['UNAUTHENTICATED'];
      throw new UnauthenticatedError('Invalid or expired token', 401);
    }
    throw error;
  }
}

/**
 * The request's context from its HTTP request: principal (UNAUTHENTICATED with HTTP 401 for a
 * refused token), client address, user agent and request id. The one way a request gets its
 * principal and transaction: GraphQL and the non-GraphQL routes that act for a principal (the
 * audit export) both go through it.
 */
export async function requestContext(deps: ServerDeps, keyring: ServiceKeyring, req: EdgeRequest, res: EdgeResponse): Promise<RequestContext> {
  const principal = await principalFrom(req.headers.authorization, deps.verifier, keyring, logDetails(res));
  const context = new RequestContext(deps, principal, {
    requestId: res.locals.requestId as string,
    ipAddress: clientIp(req.socket.remoteAddress, req.headers['x-forwarded-for'], deps.config.trustedProxies),
    userAgent: typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'].slice(0, 512) : null,
  });
  return withRequestLog(context, logDetails(res));
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** NUL in a GraphQL request's body or query string is refused at the edge, before any statement could fail on it (and named in the request log). */
const refuseNul: EdgeMiddleware = (req, res, next) => {
  const search = searchOf(req.url);
  if (containsNul(req.body) || (search !== '' && containsNul([...new URLSearchParams(search)]))) {
    Object.assign(logDetails(res), { reason: 'NUL character', errors: ['BAD_USER_INPUT'] });
    sendJson(res, 400, { errors: [{ message: 'Input must not contain NUL characters', extensions: { code: 'BAD_USER_INPUT' } }] });
    return;
  }
  next();
};

/** The request id the logs use: the client's `x-request-id` when it is a sane one, a new uuid otherwise; echoed on every response. */
const requestIdMiddleware: EdgeMiddleware = (req, res, next) => {
  const header = req.headers['x-request-id'];
  const requestId = typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
  res.locals.requestId = requestId;
  res.setHeader('x-request-id', requestId);
  next();
};

/**
 * What went wrong outside GraphQL's own answer: an oversized body or malformed JSON (body-parser's
 * errors carry an HTTP status) gets a GraphQL-shaped answer; anything else (a route's failure) is
 * logged and answered 500, or 503 when the database cannot be reached — JSON with the request id.
 */
function refuseRequest(error: unknown, res: EdgeResponse, deps: ServerDeps): void {
  const status = (error as { status?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const type = (error as { type?: string }).type;
    const code = status === 413 ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST';
    Object.assign(logDetails(res), { reason: status === 413 ? 'payload too large' : (type ?? 'bad request'), errors: [code] });
    sendJson(res, status, { errors: [{ message: type ?? 'Bad request', extensions: { code } }] });
    return;
  }
  deps.logger.error({ requestId: res.locals.requestId as string, err: error }, 'request failed');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // The database unreachable: 503, as GraphQL answers it (formatError), so that callers retry.
  const unavailable = isConnectionError(error);
  const answer = unavailable ? databaseUnavailable() : { message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } };
  sendJson(res, unavailable ? 503 : 500, { errors: [{ ...answer, extensions: { ...answer.extensions, requestId: res.locals.requestId } }] });
}

export interface AppServer {
  app: express.Express;
  httpServer: http.Server;
  apollo: ApolloServer<RequestContext>;
  /** The Prometheus registry behind GET /metrics. */
  metrics: Metrics;
  /** Stops accepting, lets in-flight requests finish. */
  stop(): Promise<void>;
}

/** Builds the schema, shield, Apollo Server and the HTTP routes (not yet listening). */
export async function createServer(deps: ServerDeps): Promise<AppServer> {
  const schema = await buildAppSchema();
  const app = express();
  app.disable('x-powered-by');
  // GraphQL responses are not cached by HTTP: no ETag (Express would hash every response body).
  app.disable('etag');
  // Requests reach the edge below first, then Express (all but GraphQL's POSTs).
  const httpServer = http.createServer();
  // Idle keep-alive connections stay open longer than a load balancer's or gateway's idle timeout
  // (60 s on the common ones): with Node's 5 s default the server could close a connection just as
  // a client reused it, and that request failed with "socket closed" instead of an answer.
  httpServer.keepAliveTimeout = 65_000;
  httpServer.headersTimeout = 66_000;
  const armor = new ApolloArmor({
    maxDepth: { n: 10 },
    maxAliases: { n: 15 },
    maxDirectives: { n: 50 },
    // graphql-js counts tokens itself (parseOptions below): armor's re-parse turned every
    // syntax error into an HTTP 500.
    maxTokens: { enabled: false },
    // Cost is counted per object with the request's variables by queryCostPlugin (SPEC §8);
    // armor's estimate ignores variables and reports its refusals as "Syntax Error".
    costLimit: { enabled: false },
    blockFieldSuggestion: { enabled: true },
  }).protect();
  const apollo = new ApolloServer<RequestContext>({
    // The schema, its operations executed compiled (src/graphql/executor.ts).
    gateway: compiledExecution(schema, { traced: tracingEnabled() }),
    introspection: deps.config.introspection,
    csrfPrevention: true,
    // main.ts owns SIGTERM/SIGINT (drain, then close the database); Apollo's own handler would race it.
    stopOnTerminationSignals: false,
    allowBatchedHttpRequests: false,
    parseOptions: { maxTokens: 2000 },
    includeStacktraceInErrorResponses: false,
    formatError,
    validationRules: armor.validationRules,
    plugins: [
      ...armor.plugins,
      ApolloServerPluginLandingPageDisabled(),
      ApolloServerPluginInlineTraceDisabled(),
      // No HTTP caching of GraphQL responses here: the cache-control plugin would only instrument every field.
      ApolloServerPluginCacheControlDisabled(),
      ApolloServerPluginDrainHttpServer({ httpServer }),
      // Before any SQL: input first (so a bad variable is reported as such), then cost.
      inputGuardPlugin(),
      queryCostPlugin(deps.config.maxQueryCost),
      // Then the principal's rate limit (README "Rate limits"), counted outside the request's transaction.
      ...(deps.config.rateLimits ? [rateLimitPlugin(new RateLimiter(deps.db, deps.config.rateLimitUserPerMinute, deps.logger))] : []),
      requestPlugin(deps),
    ],
  });
  await apollo.start();
  if (!useSharedGatewayContext()) deps.logger.warn("Apollo Server's gateway request context could not be replaced (src/graphql/gateway-context.ts): every request now costs more garbage collection");

  const metrics = new Metrics(() => deps.db.poolStats());
  // Every request, GraphQL or not, passes the edge first: request id (every response, 401, 413 and
  // health included, carries the one the logs use), the request log, CORS.
  const edge: EdgeMiddleware[] = [requestIdMiddleware, requestLogger(deps.logger, metrics), corsMiddleware(deps.config.corsOrigins)];
  const keyring = serviceKeyring(deps.db, deps.envelope);
  const answerGraphql = graphqlHandler(apollo, (req, res) => requestContext(deps, keyring, req, res));
  const graphql: EdgeMiddleware[] = [express.json({ limit: '1mb' }), refuseNul, (req, res, next) => void answerGraphql(req, res).catch(next)];
  // The other routes, and GraphQL's other methods (the explorer page answers a browser's GET /graphql when EXPLORER is on).
  app.use(healthRoutes(deps));
  app.use(metrics.routes());
  app.use(billingWebhookRoutes(deps));
  app.use(jwksRoutes(keyring, deps.logger));
  app.use(auditExportRoutes((req, res) => requestContext(deps, keyring, req, res)));
  app.use(explorerRoutes(deps.config.explorer, deps.logger));
  app.use('/graphql', ...graphql);
  app.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => refuseRequest(error, res, deps));
  httpServer.on('request', (req: EdgeRequest, res: EdgeResponse) => {
    res.locals ??= Object.create(null) as Record<string, unknown>;
    runMiddlewares(edge, req, res, (error) => {
      if (error !== undefined) return refuseRequest(error, res, deps);
      // GraphQL's POSTs, nearly all the traffic, go straight to Apollo: no Express router, request or response helpers.
      if (isGraphqlPost(req)) return runMiddlewares(graphql, req, res, (failed) => refuseRequest(failed ?? new Error('GraphQL handler passed the request on'), res, deps));
      app(req, res);
    });
  });

  return {
    app,
    httpServer,
    apollo,
    metrics,
    async stop() {
      await apollo.stop();
    },
  };
}
