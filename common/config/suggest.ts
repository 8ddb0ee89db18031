import type { Fields } from './field.js';
import { joinPath } from './leaves.js';

/**
 * Known names the user probably meant by the unknown `key` in the section at `path`: the nearest
 * entry of its `fields` within edit distance 2 (or one that differs only in case and separators, like
 * "logEvery"), else a field of that name in another section (one put at the wrong level), from `everyPath`.
 */
export function suggest(fields: Fields, path: string, key: string, everyPath: readonly string[]): string[] {
  const squash = (s: string): string => s.replace(/[-_]/g, '').toLowerCase();
  let best: string | undefined;
  let bestDistance = 3;
  for (const name of Object.keys(fields)) {
    const d = squash(name) === squash(key) ? 0 : editDistance(name, key);
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  if (best !== undefined) return [joinPath(path, best)];
  return everyPath.filter((p) => p.slice(p.lastIndexOf('.') + 1) === key);
}

/** Levenshtein distance (insertions, deletions, substitutions). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
