import type { FeatureRows } from '../text/text-features.js';
import type { SparseEmbedding } from './sparse-embedding.js';

/**
 * The momentum (key) copy of a sparse table, θk ← m·θk + (1−m)·θq after every step, computed lazily.
 * A row whose online value v has not changed for Δ steps satisfies θk = v + m^Δ·(θk_then − v)
 * exactly, so a row is brought up to date only when it is read or its online value is about to
 * change: per-step cost follows the batch, not the 2^17-row table.
 */
export class MomentumEmbedding {
  readonly table: Float32Array;
  /** The step each row's key value is current for. */
  readonly stamp: Int32Array;

  constructor(
    readonly online: SparseEmbedding,
    readonly momentum: number,
  ) {
    this.table = online.table.slice();
    this.stamp = new Int32Array(online.rows);
  }

  /** Brings the given rows to their value after `step`, assuming their online value is unchanged since their stamp. */
  catchUp(rows: ArrayLike<number>, step: number): void {
    const { dim } = this.online;
    const q = this.online.table;
    const { table, stamp } = this;
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      const lag = step - stamp[r]!;
      if (lag <= 0) continue;
      const decay = this.momentum ** lag;
      const o = r * dim;
      for (let k = o; k < o + dim; k++) table[k] = q[k]! + decay * (table[k]! - q[k]!);
      stamp[r] = step;
    }
  }

  /** Pooled key-tower input for step `step`: the key table as it stood after step − 1. */
  pool(features: FeatureRows, items: ArrayLike<number>, step: number): Float32Array {
    this.catchUp(this.online.touchedRows(features, items), step - 1);
    return this.online.pool(features, items, this.table);
  }

  /** Call before the online rows change at `step`: settles them up to step − 1 with their old value. */
  beforeOnlineUpdate(rows: ArrayLike<number>, step: number): void {
    this.catchUp(rows, step - 1);
  }

  /** Call after the online rows changed at `step`: one momentum step towards their new value. */
  afterOnlineUpdate(rows: ArrayLike<number>, step: number): void {
    const { dim } = this.online;
    const q = this.online.table;
    const m = this.momentum;
    const { table, stamp } = this;
    for (let i = 0; i < rows.length; i++) {
      const o = rows[i]! * dim;
      for (let k = o; k < o + dim; k++) table[k] = m * table[k]! + (1 - m) * q[k]!;
      stamp[rows[i]!] = step;
    }
  }

  /** Brings every row up to `step`, e.g. to compare the table with an eager copy; O(table). */
  settleAll(step: number): void {
    const all = new Int32Array(this.online.rows);
    for (let r = 0; r < all.length; r++) all[r] = r;
    this.catchUp(all, step);
  }
}
