import type http from 'node:http';

/**
 * Node's own request and response, as every route sees them: the middlewares at the edge (request
 * id, request log, CORS, the JSON body) run on these before Express or GraphQL, so that GraphQL's
 * POSTs — nearly all the traffic — never pay for Express's router and response helpers.
 */
export type EdgeRequest = http.IncomingMessage & { body?: unknown };
/** `locals` as Express names it (Express keeps an existing object): the request id and the log details live there. */
export type EdgeResponse = http.ServerResponse & { locals: Record<string, unknown> };
export type EdgeMiddleware = (req: EdgeRequest, res: EdgeResponse, next: (error?: unknown) => void) => void;

/** Runs connect-style middlewares in order, as Express would; `done` gets the first error passed on or thrown, or nothing after the last. */
export function runMiddlewares(middlewares: readonly EdgeMiddleware[], req: EdgeRequest, res: EdgeResponse, done: (error?: unknown) => void): void {
  let index = 0;
  const next = (error?: unknown): void => {
    if (error !== undefined && error !== null) return done(error);
    const middleware = middlewares[index++];
    if (!middleware) return done();
    try {
      middleware(req, res, next);
    } catch (thrown) {
      done(thrown);
    }
  };
  next();
}

/** A JSON answer without Express's response helpers (same headers as `res.json`). */
export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
}

/** The path of a request URL, without its query string. */
export function pathOf(url: string | undefined): string {
  if (!url) return '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** The query string of a request URL, with its `?` ('' when it has none). */
export function searchOf(url: string | undefined): string {
  const q = url?.indexOf('?') ?? -1;
  return q < 0 ? '' : url!.slice(q);
}

/** A GraphQL POST to /graphql: the request the edge hands to Apollo itself, without Express (and that tracing names itself). */
export function isGraphqlPost(req: { method?: string; url?: string }): boolean {
  return req.method === 'POST' && pathOf(req.url) === '/graphql';
}
