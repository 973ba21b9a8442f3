import { type ApolloServer, type BaseContext, HeaderMap } from '@apollo/server';
import { type EdgeRequest, type EdgeResponse, searchOf } from './edge';

/**
 * Answers a GraphQL request (its body already parsed) with Apollo Server on Node's own request
 * and response: what `@as-integrations/express5` does, without Express's response helpers, so
 * that the hot path — a POST to /graphql — needs no Express at all (src/server.ts).
 */
export function graphqlHandler<C extends BaseContext>(apollo: ApolloServer<C>, context: (req: EdgeRequest, res: EdgeResponse) => Promise<C>) {
  return async (req: EdgeRequest, res: EdgeResponse): Promise<void> => {
    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    const response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: (req.method ?? 'GET').toUpperCase(), headers, search: searchOf(req.url), body: req.body },
      context: () => context(req, res),
    });
    for (const [key, value] of response.headers) res.setHeader(key, value);
    res.statusCode = response.status ?? 200;
    if (response.body.kind === 'complete') {
      res.setHeader('content-length', Buffer.byteLength(response.body.string));
      res.end(response.body.string);
      return;
    }
    for await (const chunk of response.body.asyncIterator) res.write(chunk);
    res.end();
  };
}
