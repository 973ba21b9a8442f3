import fs from 'node:fs';
import path from 'node:path';
import express, { type Request, Router } from 'express';
import type { Logger } from 'pino';

/** Where the page's scripts, stylesheet and workers are served (under /graphql, so a proxy that routes only /graphql serves them too). */
export const EXPLORER_ASSETS_PATH = '/graphql/explorer';

/**
 * dist/explorer (written by explorer/build.mjs) under the project root, the nearest folder
 * above `from` with a package.json: the same folder whether this file runs from src/ (tests)
 * or from dist/src/ (the built service).
 */
export function explorerAssetsDir(from: string = __dirname): string {
  let dir = from;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return path.join(dir, 'dist', 'explorer');
}

/**
 * Only the service's own origin for scripts, workers and requests (no inline script, no eval).
 * Fonts and icons also come as data: URLs inside the bundled stylesheet.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "worker-src 'self'",
  // Monaco (GraphiQL's editor) writes its theme into a <style> element at run time, and
  // components set style attributes: inline styles are allowed, inline scripts are not.
  "style-src 'self' 'unsafe-inline'",
  "font-src 'self' data:",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <link rel="icon" href="data:,">
    <title>Tenant service · GraphQL explorer</title>
    <link rel="stylesheet" href="${EXPLORER_ASSETS_PATH}/explorer.css">
    <script type="module" src="${EXPLORER_ASSETS_PATH}/explorer.js"></script>
  </head>
  <body>
    <div id="graphiql">Loading the explorer…</div>
  </body>
</html>
`;

/** A browser opening /graphql: a GET that prefers HTML to JSON and carries no query (GET queries go to Apollo). */
function wantsPage(req: Request): boolean {
  return req.query.query === undefined && req.accepts(['application/json', 'application/graphql-response+json', 'text/html']) === 'text/html';
}

/**
 * The GraphQL explorer (SPEC §7): GraphiQL at GET /graphql for a browser, from assets bundled at
 * build time (no CDN). Off, it adds no route: /graphql answers as the GraphQL endpoint alone.
 */
export function explorerRoutes(enabled: boolean, logger: Logger): Router {
  const router = Router();
  if (!enabled) return router;
  const dir = explorerAssetsDir();
  const built = () => fs.existsSync(path.join(dir, 'explorer.js'));
  if (!built()) logger.warn({ dir }, 'EXPLORER is on but the explorer is not built: run npm run build');

  router.get('/graphql', (req, res, next) => {
    if (!wantsPage(req)) return next();
    res.vary('Accept');
    if (!built()) {
      res.status(503).type('text/plain').send('The GraphQL explorer is not built: run npm run build.\n');
      return;
    }
    res
      .set({
        'Content-Security-Policy': CONTENT_SECURITY_POLICY,
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
        'Cache-Control': 'no-store',
      })
      .type('html')
      .send(PAGE);
  });
  router.use(
    EXPLORER_ASSETS_PATH,
    express.static(dir, { index: false, redirect: false, setHeaders: (res) => res.setHeader('X-Content-Type-Options', 'nosniff') }),
    (_req, res) => {
      res.status(404).type('text/plain').send('Not found\n');
    },
  );
  return router;
}
