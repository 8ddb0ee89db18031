/**
 * Upper bounds, in steps, of the key-age histogram of a bank replica (a key's age is the current step
 * minus the step that produced it); a last bucket holds everything older. Shared by the step lines and
 * the metrics, so both bin alike. Doubling widths: MoCo's queue at K = 65,536 and batch 256 holds keys
 * up to 256 steps old.
 */
export const KEY_AGE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] as const;

/** Mean age in steps, as seen at `step`, of keys produced at `steps`. */
export function meanKeyAge(steps: ArrayLike<number>, step: number): number {
  let sum = 0;
  for (let i = 0; i < steps.length; i++) sum += step - steps[i]!;
  return steps.length === 0 ? 0 : sum / steps.length;
}

/** Keys per age bucket as seen at `step`: counts for ages ≤ each of {@link KEY_AGE_BUCKETS}, then the older ones. */
export function keyAgeCounts(steps: ArrayLike<number>, step: number): number[] {
  const counts = new Array<number>(KEY_AGE_BUCKETS.length + 1).fill(0);
  for (let i = 0; i < steps.length; i++) {
    const age = step - steps[i]!;
    let b = 0;
    while (b < KEY_AGE_BUCKETS.length && age > KEY_AGE_BUCKETS[b]!) b++;
    counts[b]!++;
  }
  return counts;
}
