import type { FeatureRows } from '../text/text-features.js';
import type { RowShardPlan } from './row-shard-plan.js';
import type { SparseRowGrad } from './sparse-embedding.js';

/**
 * The pooled lookups of a row-sharded table and their gradients (TorchRec's row-wise sharding, with
 * mean pooling): a member's bags are split by the owners of their rows, each owner sums the rows it
 * holds per bag, and the member adds the owners' partial sums and divides by the bag's size. Backward,
 * each owner receives every member's pooled gradient divided by the bag sizes and scatters it to the
 * rows the member's bags read there; summed over the members and divided by W it is the world mean
 * of the unsharded table's row gradient (worker/collective/rows-mean.ts), to float32 rounding. What
 * travels between members (requests, partial sums, gradients) is the caller's: an all-to-all.
 */

/** One member's request to one owner: the (bag, row) pairs of its bags whose rows the owner holds, rows local to the owner. */
export interface BagRowRequest {
  /** Bag index (the item's place in the member's batch) of each pair. */
  bags: Int32Array;
  /** The owner's local row (global row − the owner's first row) of each pair. */
  rows: Int32Array;
}

/** The member's bags (items' features) split by owner: `requests[o]` is owner o's, pairs in bag order. */
export function requestsByOwner(features: FeatureRows, items: ArrayLike<number>, plan: RowShardPlan): BagRowRequest[] {
  const bags: number[][] = Array.from({ length: plan.world }, () => []);
  const rows: number[][] = Array.from({ length: plan.world }, () => []);
  for (let b = 0; b < items.length; b++) {
    const item = items[b]!;
    for (let f = features.offsets[item]!; f < features.offsets[item + 1]!; f++) {
      const row = features.ids[f]!;
      const owner = plan.ownerOf(row);
      bags[owner]!.push(b);
      rows[owner]!.push(row - plan.range(owner).start);
    }
  }
  return bags.map((b, o) => ({ bags: Int32Array.from(b), rows: Int32Array.from(rows[o]!) }));
}

/**
 * An owner's answer to one request: per bag, the sum of the requested rows of its local `table`
 * (`bagCount`×dim; bags with no pair here are zeros). A pair naming a bag or row outside the ranges
 * is a RangeError: the request is refused whole.
 */
export function partialBagSums(table: Float32Array, dim: number, request: BagRowRequest, bagCount: number): Float32Array {
  checkRequest(request, table.length / dim, bagCount);
  const out = new Float32Array(bagCount * dim);
  for (let i = 0; i < request.bags.length; i++) {
    const o = request.bags[i]! * dim;
    const r = request.rows[i]! * dim;
    for (let k = 0; k < dim; k++) out[o + k]! += table[r + k]!;
  }
  return out;
}

/** The member's pooled rows (B×dim): the owners' partial sums added in owner order, divided by each bag's size (an empty bag pools to zeros). */
export function pooledFromPartials(partials: readonly Float32Array[], features: FeatureRows, items: ArrayLike<number>, dim: number): Float32Array {
  const out = new Float32Array(items.length * dim);
  for (const p of partials) {
    if (p.length !== out.length) throw new RangeError(`a partial sum of ${p.length} values for ${items.length} bags of ${dim}`);
    for (let i = 0; i < out.length; i++) out[i]! += p[i]!;
  }
  for (let b = 0; b < items.length; b++) {
    const n = features.offsets[items[b]! + 1]! - features.offsets[items[b]!]!;
    if (n > 0) for (let k = 0; k < dim; k++) out[b * dim + k]! /= n;
  }
  return out;
}

/** The pooled gradient a member sends every owner: each bag's row of `pooledGrad` divided by the bag's size (what each of its rows receives). */
export function perRowBagGradient(pooledGrad: Float32Array, features: FeatureRows, items: ArrayLike<number>, dim: number): Float32Array {
  const out = new Float32Array(pooledGrad.length);
  for (let b = 0; b < items.length; b++) {
    const n = features.offsets[items[b]! + 1]! - features.offsets[items[b]!]!;
    if (n > 0) for (let k = 0; k < dim; k++) out[b * dim + k] = pooledGrad[b * dim + k]! / n;
  }
  return out;
}

/**
 * An owner's row gradient, world mean: for every member m (in rank order) and every pair of m's
 * request, the pair's bag row of m's per-row gradient added to the pair's local row, in float64, then
 * divided by `world`. Distinct local rows, sorted ascending, as rowsMean gives them.
 */
export function ownerRowGradient(
  requests: readonly BagRowRequest[],
  grads: readonly Float32Array[],
  dim: number,
  localRows: number,
  world: number,
): SparseRowGrad {
  const slot = new Map<number, number>();
  requests.forEach((req, m) => {
    checkRequest(req, localRows, grads[m]!.length / dim);
    for (const r of req.rows) if (!slot.has(r)) slot.set(r, 0);
  });
  const rows = Int32Array.from(slot.keys()).sort();
  rows.forEach((r, i) => slot.set(r, i));
  const sums = new Float64Array(rows.length * dim);
  requests.forEach((req, m) => {
    const g = grads[m]!;
    for (let i = 0; i < req.bags.length; i++) {
      const o = slot.get(req.rows[i]!)! * dim;
      const from = req.bags[i]! * dim;
      for (let k = 0; k < dim; k++) sums[o + k]! += g[from + k]!;
    }
  });
  return { rows, values: Float32Array.from(sums, (s) => s / world) };
}

function checkRequest(request: BagRowRequest, localRows: number, bagCount: number): void {
  if (request.bags.length !== request.rows.length) throw new RangeError(`a request of ${request.bags.length} bags for ${request.rows.length} rows`);
  for (let i = 0; i < request.rows.length; i++) {
    const [b, r] = [request.bags[i]!, request.rows[i]!];
    if (b < 0 || b >= bagCount) throw new RangeError(`a request names bag ${b} of ${bagCount}`);
    if (r < 0 || r >= localRows) throw new RangeError(`a request names row ${r} of a shard of ${localRows}`);
  }
}
