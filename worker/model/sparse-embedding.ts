import type { Rng } from '../../common/random.js';
import type { FeatureRows } from '../text/text-features.js';

/** A sparse gradient of an embedding table: distinct row ids and their dim-wide gradients. */
export interface SparseRowGrad {
  rows: Int32Array;
  /** rows.length × dim, row-major. */
  values: Float32Array;
}

/**
 * A hashed-feature embedding table kept outside autodiff (docs/architecture.md §6: wasm has no gather gradient,
 * and a dense table gradient would cost the whole table every step). Items are mean-pooled bags of
 * feature rows; the gradient of the pooled output is scattered back to the rows it touched, so time
 * and memory per step scale with the batch, not the table.
 */
export class SparseEmbedding {
  readonly table: Float32Array;
  /** Scratch map row → position in the current gradient, -1 when absent; reset after each use. */
  private readonly slot: Int32Array;

  constructor(
    readonly rows: number,
    readonly dim: number,
    /** Draws the initial rows, uniform in ±initScale; null starts every row at zero. */
    rng: Rng | null,
    initScale = 0.1,
  ) {
    this.table = new Float32Array(rows * dim);
    if (rng !== null) for (let i = 0; i < this.table.length; i++) this.table[i] = (rng.next() * 2 - 1) * initScale;
    this.slot = new Int32Array(rows).fill(-1);
  }

  /** Mean of each item's feature rows (an item with no features pools to zeros), B×dim. */
  pool(features: FeatureRows, items: ArrayLike<number>, table: Float32Array = this.table): Float32Array {
    const { dim } = this;
    const out = new Float32Array(items.length * dim);
    for (let b = 0; b < items.length; b++) {
      const item = items[b]!;
      const start = features.offsets[item]!;
      const end = features.offsets[item + 1]!;
      if (end === start) continue;
      const o = b * dim;
      for (let f = start; f < end; f++) {
        const r = features.ids[f]! * dim;
        for (let k = 0; k < dim; k++) out[o + k]! += table[r + k]!;
      }
      const inv = 1 / (end - start);
      for (let k = 0; k < dim; k++) out[o + k]! *= inv;
    }
    return out;
  }

  /** Distinct rows touched by the items' features, in first-seen order. */
  touchedRows(features: FeatureRows, items: ArrayLike<number>): Int32Array {
    const rows: number[] = [];
    for (let b = 0; b < items.length; b++) {
      const item = items[b]!;
      for (let f = features.offsets[item]!; f < features.offsets[item + 1]!; f++) {
        const r = features.ids[f]!;
        if (this.slot[r] === -1) {
          this.slot[r] = rows.length;
          rows.push(r);
        }
      }
    }
    for (const r of rows) this.slot[r] = -1;
    return Int32Array.from(rows);
  }

  /** Scatters the gradient of the pooled output (B×dim) to the feature rows, merging duplicates. */
  rowGradient(features: FeatureRows, items: ArrayLike<number>, pooledGrad: Float32Array): SparseRowGrad {
    const { dim } = this;
    const rows = this.touchedRows(features, items);
    rows.forEach((r, i) => (this.slot[r] = i));
    const values = new Float32Array(rows.length * dim);
    for (let b = 0; b < items.length; b++) {
      const item = items[b]!;
      const start = features.offsets[item]!;
      const end = features.offsets[item + 1]!;
      if (end === start) continue;
      const inv = 1 / (end - start);
      const g = b * dim;
      for (let f = start; f < end; f++) {
        const o = this.slot[features.ids[f]!]! * dim;
        for (let k = 0; k < dim; k++) values[o + k]! += pooledGrad[g + k]! * inv;
      }
    }
    for (const r of rows) this.slot[r] = -1;
    return { rows, values };
  }
}
