/**
 * A tiny typed GraphQL client: the document's TypedDocumentNode decides what `variables` must be
 * and what the promise resolves to. No GraphQL client library needed; swap in Apollo Client,
 * urql or graphql-request the same way (they all accept TypedDocumentNode).
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';

/** An error as the service reports it: `extensions.code` is what a client branches on (NOT_FOUND, FORBIDDEN, BAD_USER_INPUT…). */
export interface ServiceError {
  message: string;
  path?: ReadonlyArray<string | number>;
  extensions?: { code?: string; field?: string; reason?: string; requestId?: string };
}

/** Thrown when the response carries errors; `data` holds what the service could still answer (fields that failed are null). */
export class GraphQLRequestError<TResult> extends Error {
  constructor(
    readonly status: number,
    readonly errors: readonly ServiceError[],
    readonly data: TResult | null,
  ) {
    super(errors.map((e) => `${e.extensions?.code ?? 'ERROR'}: ${e.message}`).join('; ') || `HTTP ${status}`);
  }

  get codes(): string[] {
    return this.errors.map((e) => e.extensions?.code ?? 'ERROR');
  }
}

export interface ClientOptions {
  /** The service's (or the gateway's) GraphQL endpoint, e.g. https://api.example.com/graphql. */
  url: string;
  /** The bearer token of the signed-in user (from your identity provider), or null when signed out. */
  token: () => string | null | Promise<string | null>;
}

/** Variables are required exactly when the operation declares some without defaults. */
type VariablesArgument<TVariables> = Record<string, never> extends TVariables ? [variables?: TVariables] : [variables: TVariables];

export type Request = ReturnType<typeof createClient>;

export function createClient(options: ClientOptions) {
  return async function request<TResult, TVariables>(
    document: TypedDocumentNode<TResult, TVariables>,
    ...[variables]: VariablesArgument<TVariables>
  ): Promise<TResult> {
    const token = await options.token();
    const response = await fetch(options.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query: print(document), variables }),
    });
    // Errors come as GraphQL JSON too (401 without a valid token, 400 for a refused query, 503 while the database is away).
    const body = (await response.json()) as { data?: TResult | null; errors?: ServiceError[] };
    const data = body.data ?? null;
    if (body.errors?.length || data === null) throw new GraphQLRequestError(response.status, body.errors ?? [], data);
    return data;
  };
}
