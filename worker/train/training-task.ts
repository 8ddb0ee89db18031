import type { CheckpointArray } from '../../common/checkpoint-file.js';
import type { EvaluationGroup } from '../eval/evaluation-group.js';
import type { ContrastiveModel } from './contrastive-model.js';
import type { ShardRange } from '../dataset/sharded-example-order.js';

/**
 * One kind of training (click logs, images) as the trainer drives it: a model, a stream of batches,
 * an evaluation, and the state beyond the dense parameters that a checkpoint must hold.
 */
export interface TrainingTask<B> {
  readonly model: ContrastiveModel<B>;
  /** What the data is, for the log line at start. */
  readonly description: string;
  /** log p(item) for logQ correction, or null when off or items have no identity. */
  readonly logQ: Float32Array | null;
  /** True MI of the data in nats when the data set declares it (synthetic click logs), else null. */
  readonly trueMi: number | null;
  /** Bad input lines skipped while loading, by reason. */
  readonly skipped: Record<string, number>;
  /**
   * The job's example stream (every worker computes the same one): examples per epoch, a position's
   * epoch, and on a prepared dataset the shard blocks a range of positions reads.
   */
  readonly order: { readonly size: number; epochOf(position: number): number; shardRanges?(start: number, count: number): ShardRange[] };
  /** The batch of the examples at stream positions [start, start + count) (a prepared dataset reads the shards it needs first). */
  batchAt(start: number, count: number): Promise<B> | B;
  /** True when every member of `evaluate`'s group takes a share of the work; else rank 0 evaluates alone. */
  readonly sharedEvaluation: boolean;
  /** Held-out quality figures next to their baselines, for the model after `step` at temperature `tau`, computed with `group`. */
  evaluate(step: number, tau: number, group: EvaluationGroup): Promise<Record<string, number | null>>;
  /** Model state outside `model.online` (sparse tables, momentum encoder, optimiser rows), as it stands. */
  saveState(): Record<string, CheckpointArray>;
  /** Bytes of the training data this worker holds now (the examples, or the shards loaded; the site vocabulary's features). */
  dataBytes(): number;
  /** Sets that state from arrays already checked to have saveState()'s names, dtypes and shapes. */
  restoreState(state: ReadonlyMap<string, CheckpointArray>): void;
}
