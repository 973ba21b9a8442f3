import { type ApolloServerPlugin, HeaderMap } from '@apollo/server';
import { type FragmentDefinitionNode, Kind } from 'graphql';
import { rateLimitIdentity } from '../auth/principal';
import { RateLimitedError } from '../common/errors';
import type { RequestContext } from '../context';
import { namedScopes } from './attribution';
import type { HitRow, RateLimiter } from './rate-limiter';

/**
 * Counts every GraphQL operation of a limited principal once, after the input and cost checks
 * passed (so a request refused before any SQL costs nothing) and before it executes. The counter
 * statement goes out first, in the same write as the request's BEGIN on its connection
 * (PostgreSQL; on the embedded database the two take turns on the single connection, the counter
 * first). Over the limit, the
 * whole request is refused: HTTP 429, `Retry-After`, RATE_LIMITED with `retryAfterSeconds`, and
 * nothing of it runs. Every counted response carries `X-RateLimit-Limit`, `-Remaining` and `-Reset`.
 */
export function rateLimitPlugin(limiter: RateLimiter): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart() {
      return {
        async responseForOperation({ contextValue: ctx, operation, document, request, response }) {
          const identity = rateLimitIdentity(ctx.principal);
          if (!identity || !operation) return null;
          const fragments: Record<string, FragmentDefinitionNode> = {};
          for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments[d.name.value] = d;
          let aheadOfBegin = false;
          const counting = limiter.hit(identity, namedScopes(operation, fragments, request.variables ?? {}), ctx.requestId, (sql, params) => {
            const pending = ctx.tx.ahead<HitRow>(sql, params);
            aheadOfBegin = pending !== null;
            return pending;
          });
          // A counter statement waiting to go ahead of BEGIN goes now, with the opening of the
          // request's transaction (a failure to open surfaces where the session is used).
          // Otherwise the transaction opens with the request's first statement, in its round trip.
          if (aheadOfBegin) ctx.session().catch(() => undefined);
          const verdict = await counting;
          if (!verdict) return null;
          const headers = response.http.headers;
          if (verdict.limit !== null) {
            headers.set('x-ratelimit-limit', String(verdict.limit));
            headers.set('x-ratelimit-remaining', String(verdict.remaining));
            headers.set('x-ratelimit-reset', String(verdict.retryAfterSeconds));
          }
          if (!verdict.refused) return null;
          const error = new RateLimitedError(verdict.retryAfterSeconds, verdict.limit ?? 0);
          const { http: _http, ...extensions } = error.extensions;
          return {
            http: { status: 429, headers: new HeaderMap([['retry-after', String(verdict.retryAfterSeconds)]]) },
            body: { kind: 'single', singleResult: { errors: [{ message: error.message, extensions }] } },
          };
        },
      };
    },
  };
}
