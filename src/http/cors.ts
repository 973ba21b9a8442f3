import cors from 'cors';
import type { CorsOrigins } from '../config';
import type { EdgeMiddleware } from './edge';

const LOOPBACK = /^http:\/\/(localhost|127\.0\.0\.1)(:\d{1,5})?$/;

/** Whether a browser on `origin` may call the API (SPEC §7). */
export function originAllowed(origins: CorsOrigins, origin: string): boolean {
  switch (origins.kind) {
    case 'any':
      return true;
    case 'loopback':
      return LOOPBACK.test(origin);
    case 'list':
      return origins.origins.includes(origin);
  }
}

/**
 * CORS for single-page apps on other origins: answers preflights and sets
 * Access-Control-Allow-Origin for allowed origins only (echoing the origin, never `*`, so
 * caches vary on it). Tokens travel in the Authorization header, never cookies, so credentials
 * mode stays off. A refused origin simply gets no CORS headers: the browser blocks the response.
 */
export function corsMiddleware(origins: CorsOrigins): EdgeMiddleware {
  return cors({
    origin: (origin, callback) => callback(null, origin !== undefined && originAllowed(origins, origin)),
    methods: ['GET', 'POST', 'OPTIONS'],
    allowedHeaders: ['authorization', 'content-type', 'x-request-id'],
    // A browser app may read the request id and the rate limit (README "Rate limits").
    exposedHeaders: ['x-request-id', 'retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'],
    credentials: false,
    maxAge: 600,
  });
}
