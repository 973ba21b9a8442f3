import { Router } from 'express';
import type { AppServices } from '../context';

/** GET /healthz: the process is up. GET /readyz: the database is reachable and migrated (503 otherwise). */
export function healthRoutes(deps: AppServices): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const ready = await deps.db.ready();
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'unavailable' });
  });
  return router;
}
