import type { SparseRowGrad } from '../model/sparse-embedding.js';

/**
 * How a worker combines its gradients with its peers'. The training step hands over the flat dense
 * gradient and the sparse row gradients and gets back the world's mean; a single worker is the world.
 */
export interface GradientReducer {
  /** Number of workers whose gradients are averaged. */
  readonly world: number;
  /** Bytes this worker has sent to its peers so far (for the collectives' metrics). */
  readonly bytesSent: number;
  /** Mean of the dense gradient over all workers at `step` (in place allowed). */
  allReduceMean(grad: Float32Array, step: number): Promise<Float32Array>;
  /** Mean of each sparse table's row gradient over all workers at `step` (rows merged). */
  allGatherRowsMean(grads: SparseRowGrad[], step: number): Promise<SparseRowGrad[]>;
  /** Every worker's (ids, values) block at `step`, indexed by rank (kept apart, not averaged). */
  allGatherBlocks(block: SparseRowGrad, step: number): Promise<SparseRowGrad[]>;
  /** Every worker's (ids, values) block at `step`, indexed by rank, on `root` only (null on the others, which keep none). */
  gatherBlocks(block: SparseRowGrad, step: number, root: number): Promise<SparseRowGrad[] | null>;
  /** The sum of `values` over all workers at `step` (in place allowed), identical bytes on every worker. */
  allReduceSum(values: Float32Array, step: number): Promise<Float32Array>;
  /**
   * The sum over all workers of this worker's segment of `values` — segment (rank + 1) mod world of
   * world near-equal contiguous ones (worker/collective/ring-plan.ts segmentRange) — as a view of
   * `values`, summed in place; the rest of `values` is left partly summed.
   */
  reduceScatterSum(values: Float32Array, step: number): Promise<Float32Array>;
}

/** The reducer of a one-worker world: the local gradient is the mean. */
export class LocalReducer implements GradientReducer {
  readonly world = 1;
  readonly bytesSent = 0;

  async allReduceMean(grad: Float32Array): Promise<Float32Array> {
    return grad;
  }

  async allGatherRowsMean(grads: SparseRowGrad[]): Promise<SparseRowGrad[]> {
    return grads;
  }

  async allGatherBlocks(block: SparseRowGrad): Promise<SparseRowGrad[]> {
    return [block];
  }

  async gatherBlocks(block: SparseRowGrad): Promise<SparseRowGrad[]> {
    return [block];
  }

  async allReduceSum(values: Float32Array): Promise<Float32Array> {
    return values;
  }

  async reduceScatterSum(values: Float32Array): Promise<Float32Array> {
    return values;
  }
}
