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
    const { dim } = this;
    for (let i = 0; i < g.rows.length; i++) {
      const r = g.rows[i]!;
      const o = i * dim;
      let sq = 0;
      for (let k = 0; k < dim; k++) sq += g.values[o + k]! * g.values[o + k]!;
      const acc = (this.accum[r] = this.accum[r]! + sq / dim);
      const step = this.lr / (Math.sqrt(acc) + this.epsilon);
      const t = r * dim;
      for (let k = 0; k < dim; k++) table[t + k]! -= step * g.values[o + k]!;
    }
  }
}
