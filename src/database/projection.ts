import type { GraphQLResolveInfo, SelectionSetNode } from 'graphql';
import { forEachField } from '../graphql/selections';

/**
 * The names of the fields a resolver's selection asks for, at `path` inside it (`[]`: the field's
 * own selection; `['nodes']`, `['edges', 'node']`: a connection's objects). Fragments and inline
 * fragments are followed; `@skip`/`@include` are ignored, so the set may be larger than what is
 * finally returned, never smaller.
 */
export function selectedFields(info: GraphQLResolveInfo, ...paths: ReadonlyArray<readonly string[]>): Set<string> {
  const out = new Set<string>();
  const collect = (set: SelectionSetNode | undefined, path: readonly string[]): void =>
    forEachField(set, info.fragments, (field) => {
      if (path.length === 0) out.add(field.name.value);
      else if (field.name.value === path[0]) collect(field.selectionSet, path.slice(1));
    });
  for (const path of paths.length > 0 ? paths : [[]]) for (const node of info.fieldNodes) collect(node.selectionSet, path);
  return out;
}

/**
 * `decide`, remembered per selection: graphql-js and jit hand every execution of a cached document,
 * and every item of a list, the same field nodes, so a verdict on them is made once.
 */
export function perSelection<T>(decide: (info: GraphQLResolveInfo) => T): (info: GraphQLResolveInfo) => T {
  const verdicts = new WeakMap<GraphQLResolveInfo['fieldNodes'], { value: T }>();
  return (info) => {
    let verdict = verdicts.get(info.fieldNodes);
    if (!verdict) verdicts.set(info.fieldNodes, (verdict = { value: decide(info) }));
    return verdict.value;
  };
}

/**
 * Two column lists of one table for a list loader: the lean one, enough for the fields lists
 * usually ask for, and the full one. A list reads the lean columns when every field its selection
 * names is one the lean columns serve — a thousand rows of a dozen wide columns are most of a
 * nested list's decoding and garbage — and the full ones otherwise. Only two lists, so that a
 * client cannot make a prepared statement per combination of fields.
 *
 * Entities read with the lean columns lack the other properties: they are handed only to the
 * selection that was checked, never primed into another loader.
 */
export class ListColumns {
  private readonly leanFields: ReadonlySet<string>;

  constructor(
    readonly lean: string,
    readonly full: string,
    /** The GraphQL fields the lean columns serve (their own columns and what their resolvers read). */
    leanFields: readonly string[],
  ) {
    this.leanFields = new Set([...leanFields, '__typename']);
  }

  /** Remembered per selection: graphql-js hands every item of a list the same field nodes. */
  private readonly verdicts = new WeakMap<GraphQLResolveInfo['fieldNodes'], boolean>();

  /**
   * Whether the lean columns serve every field that `info`'s selection (at `paths`, see
   * selectedFields) names. Remembered per field nodes: a caller passes the same paths for them.
   */
  serves(info: GraphQLResolveInfo, ...paths: ReadonlyArray<readonly string[]>): boolean {
    let verdict = this.verdicts.get(info.fieldNodes);
    if (verdict === undefined) {
      verdict = this.servesAll(selectedFields(info, ...paths));
      this.verdicts.set(info.fieldNodes, verdict);
    }
    return verdict;
  }

  /** Whether the lean columns serve every one of these fields (not remembered). */
  servesAll(fields: Iterable<string>): boolean {
    for (const field of fields) if (!this.leanFields.has(field)) return false;
    return true;
  }
}
