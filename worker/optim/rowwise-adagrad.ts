import type { SparseRowGrad } from '../model/sparse-embedding.js';

/**
 * Row-wise Adagrad for embedding tables (one accumulator per row, as FBGEMM and DLRM use for large
 * tables): only the rows in the gradient move, and the state is one float per row instead of Adam's
 * two per weight.
 */
export class RowwiseAdagrad {
  readonly accum: Float32Array;

  constructor(
    rows: number,
    private readonly dim: number,
    private readonly lr: number,
    private readonly epsilon = 1e-8,
  ) {
    this.accum = new Float32Array(rows);
  }

  apply(table: Float32Array, g: SparseRowGrad): void {
    const { dim, accum } = this;
    const { rows, values } = g;
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      const o = i * dim;
      let sq = 0;
      for (let k = o; k < o + dim; k++) sq += values[k]! * values[k]!;
      const acc = accum[r]! + sq / dim;
      accum[r] = acc;
      const step = this.lr / (Math.sqrt(acc) + this.epsilon);
      const t = r * dim - o;
      for (let k = o; k < o + dim; k++) table[t + k]! -= step * values[k]!;
    }
  }
}
