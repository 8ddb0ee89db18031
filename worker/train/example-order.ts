import { Rng } from '../../common/random.js';

/**
 * The job's example stream: position p is example order(⌊p/n⌋)[p mod n], where each epoch's order is a
 * permutation of the n training examples seeded by (seed, epoch). Every worker computes the same
 * stream, so a data plan is just ranges of positions: any contiguous range of n positions holds each
 * example exactly once per epoch, however the ranges are split across workers or re-planned.
 */
export class ExampleOrder {
  private cachedEpoch = -1;
  private cached = new Int32Array(0);

  constructor(
    readonly size: number,
    private readonly seed: number,
  ) {
    if (!Number.isInteger(size) || size <= 0) throw new RangeError('an epoch needs at least one example');
  }

  /** Example indices at positions [start, start + count) (a range may cross epoch boundaries). */
  slice(start: number, count: number): Int32Array {
    if (!Number.isSafeInteger(start) || start < 0 || !Number.isInteger(count) || count < 0) {
      throw new RangeError(`positions [${start}, ${start}+${count}) are not a range of the example stream`);
    }
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      const p = start + i;
      out[i] = this.permutation(Math.floor(p / this.size))[p % this.size]!;
    }
    return out;
  }

  /** Epoch of a position. */
  epochOf(position: number): number {
    return Math.floor(position / this.size);
  }

  private permutation(epoch: number): Int32Array {
    if (epoch !== this.cachedEpoch) {
      const p = new Int32Array(this.size);
      for (let i = 0; i < this.size; i++) p[i] = i;
      this.cached = new Rng((this.seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0).shuffle(p);
      this.cachedEpoch = epoch;
    }
    return this.cached;
  }
}
