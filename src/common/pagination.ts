import { Field, Int, ObjectType } from 'type-graphql';
import type { ClassType } from 'type-graphql';
import { BadUserInputError } from './errors';
import { isUuid } from './validation';

export const MAX_PAGE_SIZE = 100;

@ObjectType('PageInfo')
export class PageInfo {
  @Field() hasNextPage: boolean;
  @Field() hasPreviousPage: boolean;
  @Field(() => String, { nullable: true }) startCursor: string | null;
  @Field(() => String, { nullable: true }) endCursor: string | null;
}

/** `first` is 0–100; anything else is BAD_USER_INPUT on `first`. */
export function pageSize(first: number | null | undefined, fallback = 20): number {
  const value = first ?? fallback;
  if (!Number.isInteger(value) || value < 0 || value > MAX_PAGE_SIZE) {
    throw new BadUserInputError('first', `first must be between 0 and ${MAX_PAGE_SIZE}`);
  }
  return value;
}

/** Opaque cursor: the sort key of the last row seen. */
export function encodeCursor(values: Array<string | number>): string {
  return Buffer.from(JSON.stringify(values), 'utf8').toString('base64url');
}

const CURSOR_PARTS = {
  /** An ISO-8601 instant, as encodeCursor wrote it. */
  // Round-trips exactly as encodeCursor wrote it: no 2024-02-30 (JavaScript rolls it over, PostgreSQL refuses it).
  timestamp: (v: unknown) => {
    if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(v)) return false;
    const date = new Date(v);
    return !Number.isNaN(date.getTime()) && date.getUTCFullYear() >= 1 && date.toISOString() === v;
  },
  uuid: (v: unknown) => isUuid(v),
} as const;
export type CursorPart = keyof typeof CURSOR_PARTS;

/**
 * Decodes a cursor made by encodeCursor with the given shape; anything else is BAD_USER_INPUT on
 * `after`. Every part is checked here: a crafted value must never reach a ::timestamptz or ::uuid
 * cast, where it would abort the request's transaction.
 */
export function decodeCursor(cursor: string | null | undefined, shape: CursorPart[]): string[] | null {
  if (cursor === null || cursor === undefined) return null;
  try {
    const values: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(values) && values.length === shape.length && values.every((v, i) => CURSOR_PARTS[shape[i]!](v))) {
      return values as string[];
    }
  } catch {
    // fall through
  }
  throw new BadUserInputError('after', 'after is not a valid cursor');
}

/** One forward page of a keyset-paginated list on (timestamp, id): validated size and decoded cursor. */
export interface KeysetPage {
  /** Rows to return; the query asks for one more to know whether more follow. */
  limit: number;
  after: [string, string] | null;
}

/** Validates `first` (0–100) and `after` (a cursor of this list's shape); BAD_USER_INPUT otherwise. */
export function keysetPage(first: number | null | undefined, after: string | null | undefined, fallback = 20): KeysetPage {
  return { limit: pageSize(first, fallback), after: decodeCursor(after, ['timestamp', 'uuid']) as [string, string] | null };
}

/**
 * The SQL condition "after the cursor" for a list ordered by (timestamp column, id column):
 * `$n` is the cursor's instant (NULL on the first page) and `$n+1` its id. Pass
 * `keysetParams(page)` at that position.
 */
export function keysetAfter(timestampColumn: string, idColumn: string, direction: 'asc' | 'desc', n: number): string {
  const op = direction === 'asc' ? '>' : '<';
  return `($${n}::timestamptz IS NULL OR (${timestampColumn}, ${idColumn}) ${op} ($${n}::timestamptz, $${n + 1}::uuid))`;
}

export const keysetParams = (page: KeysetPage): [string | null, string | null] => [page.after?.[0] ?? null, page.after?.[1] ?? null];

/** The connection of a keyset page from its rows (fetched with LIMIT page.limit + 1). */
export function keysetConnection<T>(rows: T[], page: KeysetPage, keyOf: (row: T) => [Date, string], totalCount?: () => Promise<number>): ConnectionShape<T> {
  return toConnection(
    toPage(rows, page.limit, page.after !== null, (row) => {
      const [at, id] = keyOf(row);
      return encodeCursor([at.toISOString(), id]);
    }, totalCount),
  );
}

/** A page as the services produce it: rows plus one look-ahead to know whether more follow. */
export interface Page<T> {
  nodes: T[];
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  cursorOf: (node: T) => string;
  totalCount?: () => Promise<number>;
}

export function toPage<T>(rows: T[], first: number, afterGiven: boolean, cursorOf: (node: T) => string, totalCount?: () => Promise<number>): Page<T> {
  return { nodes: rows.slice(0, first), hasNextPage: rows.length > first, hasPreviousPage: afterGiven, cursorOf, totalCount };
}

export interface ConnectionShape<T> {
  edges: Array<{ cursor: string; node: T }>;
  nodes: T[];
  pageInfo: PageInfo;
  totalCount?: number | Promise<number>;
}

/**
 * Relay-style connection object: edges, nodes, pageInfo and (when the type has it) a lazy
 * totalCount. Edges (a cursor per node), the two cursors of pageInfo and the count are made only
 * when asked for: the default resolver reads the getters on demand. A class, so that a nested
 * list of fifty connections (Q3) builds fifty small objects and encodes no cursor nobody reads.
 */
export function toConnection<T>(page: Page<T>): ConnectionShape<T> {
  return new PageConnection(page);
}

class PageConnection<T> implements ConnectionShape<T> {
  readonly nodes: T[];
  private edgeList: ConnectionShape<T>['edges'] | undefined;
  private info: PageInfo | undefined;

  constructor(private readonly page: Page<T>) {
    this.nodes = page.nodes;
  }

  get edges(): ConnectionShape<T>['edges'] {
    return (this.edgeList ??= this.nodes.map((node) => ({ cursor: this.page.cursorOf(node), node })));
  }

  get pageInfo(): PageInfo {
    return (this.info ??= new PageCursors(this.page));
  }

  get totalCount(): Promise<number> | undefined {
    return this.page.totalCount?.();
  }
}

/** A page's PageInfo, each cursor encoded when read. */
class PageCursors<T> implements PageInfo {
  readonly hasNextPage: boolean;
  readonly hasPreviousPage: boolean;

  constructor(private readonly page: Page<T>) {
    this.hasNextPage = page.hasNextPage;
    this.hasPreviousPage = page.hasPreviousPage;
  }

  get startCursor(): string | null {
    const first = this.page.nodes[0];
    return first === undefined ? null : this.page.cursorOf(first);
  }

  get endCursor(): string | null {
    const last = this.page.nodes[this.page.nodes.length - 1];
    return last === undefined ? null : this.page.cursorOf(last);
  }
}

/** Declares `<Name>Edge` and `<Name>Connection` for a node type. */
export function Connection<T extends object>(name: string, nodeType: ClassType<T>, options: { totalCount: boolean } = { totalCount: true }) {
  @ObjectType(`${name}Edge`)
  class Edge {
    @Field() cursor: string;
    @Field(() => nodeType) node: T;
  }

  if (options.totalCount) {
    @ObjectType(`${name}Connection`)
    class ConnectionWithCount {
      @Field(() => [Edge]) edges: Edge[];
      @Field(() => [nodeType]) nodes: T[];
      @Field(() => PageInfo) pageInfo: PageInfo;
      @Field(() => Int) totalCount: number;
    }
    return ConnectionWithCount;
  }

  @ObjectType(`${name}Connection`)
  class ConnectionWithoutCount {
    @Field(() => [Edge]) edges: Edge[];
    @Field(() => [nodeType]) nodes: T[];
    @Field(() => PageInfo) pageInfo: PageInfo;
  }
  return ConnectionWithoutCount;
}
