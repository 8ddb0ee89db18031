import { Rng } from '../../common/random.js';

/** Where a stream stands: checkpointed so a resumed run continues the same epoch order. */
export interface StreamCursor {
  epoch: number;
  offset: number;
}

/**
 * Example indices in epochs: each epoch is a fresh seeded permutation of [0, n), consumed in order,
 * so every example is used exactly once per epoch; a batch that crosses an epoch's end continues into
 * the next one (batches keep a fixed size, which MoCo's queue and the benchmark rely on).
 */
export class EpochStream {
  private order: Int32Array;
  private cursor: StreamCursor = { epoch: 0, offset: 0 };

  constructor(
    readonly size: number,
    private readonly seed: number,
  ) {
    if (size <= 0) throw new RangeError('an epoch needs at least one example');
    this.order = this.permutation(0);
  }

  /** The next `batch` example indices. */
  next(batch: number): Int32Array {
    const out = new Int32Array(batch);
    for (let i = 0; i < batch; i++) {
      if (this.cursor.offset === this.size) {
        this.cursor = { epoch: this.cursor.epoch + 1, offset: 0 };
        this.order = this.permutation(this.cursor.epoch);
      }
      out[i] = this.order[this.cursor.offset++]!;
    }
    return out;
  }

  position(): StreamCursor {
    return { ...this.cursor };
  }

  restore(c: StreamCursor): void {
    if (!Number.isInteger(c.epoch) || c.epoch < 0 || !Number.isInteger(c.offset) || c.offset < 0 || c.offset > this.size) {
      throw new RangeError(`cursor epoch ${c.epoch}, offset ${c.offset} does not fit epochs of ${this.size}`);
    }
    this.order = this.permutation(c.epoch);
    this.cursor = { ...c };
  }

  private permutation(epoch: number): Int32Array {
    const p = new Int32Array(this.size);
    for (let i = 0; i < this.size; i++) p[i] = i;
    return new Rng((this.seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0).shuffle(p);
  }
}
