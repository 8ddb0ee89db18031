/**
 * The members that share an evaluation: each ranks the held-out pairs against its share of the sites,
 * and the counts are summed over all of them. A single process is a group of one.
 */
export interface EvaluationGroup {
  /** This member's place, in [0, world). */
  readonly rank: number;
  readonly world: number;
  /**
   * The element-wise sum of `values` over the members; every member calls it with the same length, in
   * the same order. Rejects with {@link EvaluationGroupError} when a member is lost on the way.
   */
  sum(values: Float32Array): Promise<Float32Array>;
}

/** The evaluation group of a member evaluating alone. */
export const EVALUATING_ALONE: EvaluationGroup = { rank: 0, world: 1, sum: async (values) => values };

/** A group collective failed (a member left or died, a deadline passed): the shared evaluation is off. */
export class EvaluationGroupError extends Error {
  override readonly name = 'EvaluationGroupError';
}

// Counts travel as two float32 halves, each summed exactly: below 2^12 and the multiples of 2^12.
// float32 holds integers exactly up to 2^24, so a count alone would be exact only up to 16.7 M sites.
const LOW = 4096;

/** The exact sum over the group of non-negative integer counts below 2^36 (sites, say). */
export async function sumCounts(group: EvaluationGroup, counts: Float64Array): Promise<Float64Array> {
  if (group.world === 1) return counts;
  const n = counts.length;
  const halves = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    halves[i] = counts[i]! % LOW;
    halves[n + i] = Math.floor(counts[i]! / LOW);
  }
  const summed = await group.sum(halves);
  return Float64Array.from({ length: n }, (_, i) => summed[i]! + LOW * summed[n + i]!);
}
