import type { SparseRowGrad } from '../model/sparse-embedding.js';
import { indexInSorted } from '../../common/partition-point.js';

/** Row width of a sparse gradient (0 when it has no rows), or an error naming `what` when values do not fit rows. */
export function rowWidth(grad: SparseRowGrad, what: string): number {
  const { rows, values } = grad;
  if (rows.length === 0) {
    if (values.length !== 0) throw new RangeError(`${what}: ${values.length} values for 0 rows`);
    return 0;
  }
  if (values.length % rows.length !== 0) throw new RangeError(`${what}: ${values.length} values do not split into ${rows.length} rows`);
  return values.length / rows.length;
}

/**
 * The mean over `world` workers of their sparse row gradients of one table, `blocks[r]` being rank
 * r's: distinct rows sorted ascending, each row's values summed over the blocks in rank order (in
 * float64) and divided by `world` (a row absent from a block counts as zero there). Every worker
 * merges the same blocks in the same order, so all get identical bytes.
 */
export function rowsMean(blocks: readonly SparseRowGrad[], world: number): SparseRowGrad {
  let dim = 0;
  let total = 0;
  blocks.forEach((b, r) => {
    const d = rowWidth(b, `rank ${r}'s rows`);
    if (d !== 0 && dim !== 0 && d !== dim) throw new RangeError(`rank ${r}'s rows are ${d} wide, an earlier rank's ${dim}`);
    if (d !== 0) dim = d;
    total += b.rows.length;
  });
  const all = new Int32Array(total);
  let at = 0;
  for (const b of blocks) {
    all.set(b.rows, at);
    at += b.rows.length;
  }
  all.sort();
  let distinct = 0;
  for (let i = 0; i < all.length; i++) if (i === 0 || all[i] !== all[i - 1]) all[distinct++] = all[i]!;
  const rows = all.slice(0, distinct);
  const sums = new Float64Array(distinct * dim);
  for (const b of blocks) {
    for (let i = 0; i < b.rows.length; i++) {
      const o = indexInSorted(rows, b.rows[i]!) * dim;
      for (let k = 0; k < dim; k++) sums[o + k]! += b.values[i * dim + k]!;
    }
  }
  const values = new Float32Array(sums.length);
  for (let i = 0; i < sums.length; i++) values[i] = sums[i]! / world;
  return { rows, values };
}
