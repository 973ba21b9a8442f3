/**
 * Sets `key` in a map kept to at most `max` entries, a cache of what was seen lately (verified
 * tokens, costs, rate-limit leases…): when it is full, the entry inserted first goes first.
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  if (map.size >= max) map.delete(map.keys().next().value!);
  map.set(key, value);
}
