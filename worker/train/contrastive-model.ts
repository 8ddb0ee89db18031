import type * as tf from '@tensorflow/tfjs-core';
import type { ParamSet } from '../model/param-set.js';
import type { MemoryBytes } from '../../common/memory-parts.js';
import type { SparseRowGrad } from '../model/sparse-embedding.js';

/** Anchors and their positives, unit rows B×d. */
export interface EncodedBatch {
  q: tf.Tensor2D;
  kpos: tf.Tensor2D;
}

/**
 * A MoCo-style model as the training step sees it: an online encoder with dense parameters in one flat
 * ParamSet (plus optional sparse tables fed through pooled inputs) and a momentum key encoder.
 */
export interface ContrastiveModel<B> {
  /** Dense online parameters (all-reduced, Adam-updated, checkpointed). */
  readonly online: ParamSet;
  /** Embedding dimension d. */
  readonly dim: number;
  /** Whether `encode`'s positives carry a gradient (false for MoCo's momentum keys). */
  readonly trainsPositives: boolean;
  /** Momentum-encoder keys of the batch (B×d), computed before this step's update as MoCo does. */
  momentumKeys(batch: B, step: number): Float32Array;
  /** Item ids a positive can have: [0, itemCount), or -1 for none; a bank message's ids are checked against it. */
  readonly itemCount: number;
  /** Item id of each row's positive, for accidental-hit masks and logQ (-1: no identity). */
  positiveIds(batch: B): Int32Array;
  /** Inputs built outside autodiff whose gradients the model needs (pooled sparse rows); may be empty. */
  sparseInputs(batch: B): tf.Tensor2D[];
  /** Anchors and positives from this step's parameter tensors; `keys` holds momentumKeys as a tensor. */
  encode(params: ReadonlyMap<string, tf.Tensor>, inputs: tf.Tensor2D[], keys: tf.Tensor2D, batch: B): EncodedBatch;
  /**
   * An extra loss term trained alongside the bank InfoNCE (e.g. what trains a tower that only feeds the
   * momentum encoder), or null; `scale` is this step's logit scale.
   */
  auxiliaryLoss(enc: EncodedBatch, params: ReadonlyMap<string, tf.Tensor>, inputs: tf.Tensor2D[], batch: B, scale: tf.Scalar): tf.Scalar | null;
  /** Row gradients of the sparse tables from the gradients of `sparseInputs`. */
  sparseRowGrads(batch: B, inputGrads: Float32Array[]): SparseRowGrad[];
  /** Applies the (world-mean) sparse row gradients at `step`. */
  applySparse(grads: SparseRowGrad[], step: number): void;
  /** Momentum update of the key encoder after the dense parameters moved at `step`. */
  momentumUpdate(step: number): void;
  /** Bytes the model holds: its sparse tables (momentum copies included), their optimiser rows, its dense parameters (both encoders). */
  memory(): Pick<MemoryBytes, 'tables' | 'optimizer' | 'dense'>;
}
