/**
 * Upper bounds, in steps, of the key-age histogram of a bank replica (a key's age is the current step
 * minus the step that produced it); a last bucket holds everything older. Shared by the step lines and
 * the metrics, so both bin alike. Doubling widths: MoCo's queue at K = 65,536 and batch 256 holds keys
 * up to 256 steps old.
 */
export const KEY_AGE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] as const;
