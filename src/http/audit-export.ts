import { type Request, type Response, Router } from 'express';
import { AppError, type ErrorCode, isConnectionError } from '../common/errors';
import type { RequestContext } from '../context';
import { auditEventBatches, CSV_HEADER, csvLine, exportRequest, ndjsonLine } from '../modules/audit/audit.export';
import { logDetails } from './request-log';

/** The plan feature the export needs (SPEC §5: STARTER and above, or an override). */
export const AUDIT_EXPORT_FEATURE = 'audit_log_export';

/** HTTP status of each error code a refusal can carry (SPEC §5 Audit: 401, 404, 403, 400). */
const STATUS: Partial<Record<ErrorCode, number>> = {
  UNAUTHENTICATED: 401,
  NOT_FOUND: 404,
  FORBIDDEN: 403,
  FEATURE_DISABLED: 403,
  MFA_REQUIRED: 403,
  SESSION_EXPIRED: 403,
  IP_NOT_ALLOWED: 403,
  ORGANIZATION_INACTIVE: 403,
  BAD_USER_INPUT: 400,
  RATE_LIMITED: 429,
};

/** Characters per write (about 16 KB, the socket's high-water mark). */
const CHUNK_CHARS = 16_000;

const CONTENT_TYPE = { ndjson: 'application/x-ndjson; charset=utf-8', csv: 'text/csv; charset=utf-8' } as const;

/** Writes a chunk, waiting for the socket to drain when its buffer is full (backpressure); false when the client went away. */
async function send(res: Response, chunk: string): Promise<boolean> {
  if (res.destroyed) return false;
  if (!res.write(chunk)) {
    await new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  }
  return !res.destroyed;
}

/** A refusal before any byte of the export went out: the status of its code and a JSON body carrying `code`. */
function refuse(res: Response, error: unknown): void {
  const log = logDetails(res);
  const requestId = res.locals.requestId as string;
  if (error instanceof AppError) {
    const { code: _code, http: _http, ...extensions } = error.extensions as Record<string, unknown>;
    log.errors = [error.code];
    if (error.code === 'UNAUTHENTICATED') res.setHeader('www-authenticate', 'Bearer');
    res.status(STATUS[error.code] ?? 500).json({ code: error.code, message: error.message, ...extensions, requestId });
    return;
  }
  const unavailable = isConnectionError(error);
  log.errors = ['INTERNAL_SERVER_ERROR'];
  res
    .status(unavailable ? 503 : 500)
    .json({ code: 'INTERNAL_SERVER_ERROR', message: unavailable ? 'The database is unavailable; try again shortly' : 'Internal server error', requestId, ...(unavailable ? { reason: 'DATABASE_UNAVAILABLE' } : {}) });
}

/**
 * GET /organizations/{id}/audit-events/export?format=ndjson|csv&since=&until=&actions= (SPEC §5,
 * README "Audit trail"): the organization's events matching the filters, newest first, streamed
 * from a database cursor in the request's own transaction (same principal, same row-level
 * security as GraphQL, built by the same `requestContext`) with backpressure: constant memory
 * whatever the size. Checks in the order of SPEC §6: 401 (no or bad bearer), 404 (organization
 * not visible), 403 (no org.audit.export; MFA, session, IP allowlist), 400 (bad parameter), 403
 * (plan without `audit_log_export`), each with a JSON body carrying `code`. A failure after the
 * first byte cuts the response short (the client sees an incomplete transfer, never a silent end).
 */
export function auditExportRoutes(contextFor: (req: Request, res: Response) => Promise<RequestContext>): Router {
  const router = Router();
  router.get('/organizations/:id/audit-events/export', async (req, res) => {
    const log = logDetails(res);
    log.operation = 'auditEventsExport';
    let ctx: RequestContext | undefined;
    try {
      ctx = await contextFor(req, res);
      const organization = await ctx.access.organization(req.params.id, 'org.audit.export');
      const { format, filter } = exportRequest(req.query as Record<string, unknown>);
      await ctx.access.requireFeature(organization.id, AUDIT_EXPORT_FEATURE);

      // The cursor is declared and its first batch read before any byte goes out: a failure there is still a JSON refusal.
      const batches = auditEventBatches(ctx.tx.query, organization.id, filter);
      let next = await batches.next();
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
      res.status(200);
      res.setHeader('content-type', CONTENT_TYPE[format]);
      res.setHeader('content-disposition', `attachment; filename="audit-events-${organization.slug}-${stamp}.${format}"`);
      res.setHeader('cache-control', 'no-store');
      res.setHeader('x-content-type-options', 'nosniff');
      const line = format === 'csv' ? csvLine : ndjsonLine;
      let open = format === 'csv' ? await send(res, CSV_HEADER) : true;
      while (open && !next.done) {
        let chunk = '';
        for (const row of next.value) {
          chunk += line(row);
          // Small writes: a string this size dies young; a batch-sized one would sit in V8's
          // large-object space until the next full collection, and memory would climb in between.
          if (chunk.length >= CHUNK_CHARS) {
            open = await send(res, chunk);
            chunk = '';
            if (!open) break;
          }
        }
        if (open && chunk) open = await send(res, chunk);
        if (open) next = await batches.next();
      }
      log.principal = ctx.principalId();
      log.queries = ctx.tx.queryCount;
      if (!open) {
        // The client went away: the cursor goes with the rolled-back transaction.
        await ctx.tx.finish(false);
        return;
      }
      await ctx.tx.finish(true);
      res.end();
    } catch (error) {
      await ctx?.tx.finish(false).catch(() => undefined);
      if (ctx) log.principal = ctx.principalId();
      if (!(error instanceof AppError)) ctx?.app.logger.error({ requestId: res.locals.requestId as string, err: error }, 'audit export failed');
      if (!res.headersSent) {
        res.removeHeader('content-disposition');
        return refuse(res, error);
      }
      log.errors = ['INTERNAL_SERVER_ERROR'];
      res.destroy(error instanceof Error ? error : new Error(String(error)));
    }
  });
  return router;
}
