import type { CriticRows, Estimator } from '../../common/estimators.js';
import type { MineLoss } from '../../common/estimators-losses.js';
import type { ShardCriticStats } from '../../common/partitioned-infonce.js';
import type { RowExpStats } from '../../common/log-sum-exp-merge.js';
import type { KeyBank } from '../bank/key-bank.js';
import type { ContrastiveModel } from './contrastive-model.js';

/** What the dense math reads of a step's context (worker/train/contrastive-step.ts's StepContext has it all). */
export interface DenseContext {
  /** The bank the objective scores against. */
  bank: KeyBank;
  /** Fixed logit scale 1/τ, used when the model has no learnable `logit_scale`. */
  fixedScale: number;
  objective: Estimator;
  /** MINE's moving average (the `mine` objective only). */
  mine: MineLoss;
  /** log p(item) for logQ correction, or null. */
  logQ: Float32Array | null;
  inBatchNegatives: boolean;
  maskAccidentalHits: boolean;
}

/** What the dense part of a step computes (docs/architecture.md §6). */
export interface DenseResult {
  /** The objective's value; an auxiliary term trains another tower and is not the bound's loss. */
  loss: number;
  /** Logit scale 1/τ the step used. */
  scale: number;
  /** Gradient of the objective plus any auxiliary term with respect to the dense parameters, flat in ParamSet order. */
  grad: Float32Array;
  /** Gradients of the model's sparse inputs (pooled rows), which the sparse tables scatter to their rows. */
  inputGrads: Float32Array[];
  /**
   * The row statistics of the critic's scores in the queue layout over the filled bank slots (logQ
   * included, no masks), when asked for (logged steps): what the step's bounds and accuracy come from.
   */
  critic?: CriticRows;
}

/**
 * The engine that runs a step's dense math: the momentum key tower's forward, the towers' forward and
 * backward with the objective, and a logged step's critic scores. Everything else in a step (sparse
 * tables, bank, optimisers, reducer, transports) is plain TypeScript and does not know which engine runs.
 */
export interface DenseEngine {
  /** Momentum-encoder keys of the batch (B×d), from the parameters before this step's update. */
  momentumKeys<B>(model: ContrastiveModel<B>, batch: B, step: number): Promise<Float32Array>;
  /** Forward and backward of the step's objective against `ctx.bank`; changes no parameter. */
  step<B>(model: ContrastiveModel<B>, batch: B, keys: Float32Array, positiveIds: Int32Array, ctx: DenseContext, wantCritic: boolean): Promise<DenseResult>;
}

/** One bank shard's inputs to Partial FC's passes: the gathered query rows against the shard's slots. */
export interface BankShardInput {
  /** Gathered query rows q, n×dim (unit rows). */
  q: Float32Array;
  dim: number;
  /** Logit scale 1/τ. */
  scale: number;
  /** The shard's slots, k×dim (empty ones zero). */
  keys: Float32Array;
  /** Each slot's bias, k: −logQ of its item, MASKED when empty. */
  bankBias: Float32Array;
  /** With accidental-hit masks: each row's positive id (n) and each slot's id (k). */
  hits: { rowIds: Int32Array; slotIds: Int32Array } | null;
}

/** A shard's first pass: every row's statistics over the shard's logits, and over its critic on a logged step. */
export interface BankShardStats extends RowExpStats {
  critic?: ShardCriticStats;
}

/**
 * The dense math of a partitioned-bank step (worker/train/partitioned-bank-step.ts): the query
 * tower's forward, a bank shard's two passes, and the towers' backward from the InfoNCE head's
 * gradients, which the step computes across the members.
 */
export interface PartitionedBankEngine {
  /** The online query tower's embeddings of the batch, B×d. */
  queryEmbeddings<B>(model: ContrastiveModel<B>, batch: B): Promise<Float32Array>;
  /** Each row's max and Σ exp over the shard (and the critic's statistics, when `logged`). */
  bankShardStats(shard: BankShardInput, logged: boolean): Promise<BankShardStats>;
  /** The shard's part of Σ_j p_ij·key_j (n×d), p the softmax over the whole bank with row log-sum-exps `rowLse`. */
  bankShardWeightedKeys(shard: BankShardInput, rowLse: Float32Array): Promise<Float32Array>;
  /** The gradients of every dense parameter and pooled input from the head's dL/dq (B×d) and dL/dscale. */
  partitionedBackward<B>(
    model: ContrastiveModel<B>,
    batch: B,
    keys: Float32Array,
    head: { q: Float32Array; scale: number },
    fixedScale: number,
  ): Promise<Pick<DenseResult, 'grad' | 'inputGrads'>>;
}
