import { Router } from 'express';
import type { Logger } from 'pino';
import type { ServiceKeyring } from '../auth/service-tokens';
import { isConnectionError } from '../common/errors';

/**
 * GET /.well-known/jwks.json (SPEC §7): the public keys that verify the service's access tokens
 * (exchanged API keys), every key still in its overlap included; no login. Cached briefly by
 * clients (the keys change only by rotation, which overlaps for longer than a token lives).
 */
export function jwksRoutes(keyring: ServiceKeyring, logger: Logger): Router {
  const router = Router();
  router.get('/.well-known/jwks.json', async (_req, res) => {
    try {
      const jwks = await keyring.jwks();
      res.setHeader('cache-control', 'public, max-age=60');
      res.json(jwks);
    } catch (error) {
      if (!isConnectionError(error)) logger.error({ err: error }, 'could not publish the JWKS');
      res.status(503).json({ errors: [{ message: 'The signing keys are unavailable; try again shortly', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
    }
  });
  return router;
}
