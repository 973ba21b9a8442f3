import { Kind, type FieldNode, type FragmentDefinitionNode, type SelectionSetNode } from 'graphql';

/**
 * Calls `fn` for every field of a selection set, in document order, inline fragments and fragment
 * spreads followed (each named fragment once); not for the fields' own sub-selections.
 */
export function forEachField(
  set: SelectionSetNode | undefined,
  fragments: Readonly<Record<string, FragmentDefinitionNode | undefined>>,
  fn: (field: FieldNode) => void,
  seen: Set<string> = new Set(),
): void {
  if (!set) return;
  for (const selection of set.selections) {
    if (selection.kind === Kind.FIELD) fn(selection);
    else if (selection.kind === Kind.INLINE_FRAGMENT) forEachField(selection.selectionSet, fragments, fn, seen);
    else if (!seen.has(selection.name.value)) {
      seen.add(selection.name.value);
      forEachField(fragments[selection.name.value]?.selectionSet, fragments, fn, seen);
    }
  }
}
