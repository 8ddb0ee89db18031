import { accuracyOfRows, boundsOfRows, infonceCeiling, type BoundValues } from '../../common/estimators.js';
import type { BankTransport, ExchangeRound } from '../bank/bank-transport.js';
import type { BankMessage } from '../bank/key-bank.js';
import type { GradientReducer } from '../collective/gradient-reducer.js';
import type { SparseRowGrad } from '../model/sparse-embedding.js';
import type { Adam } from '../optim/adam.js';
import { clipByGlobalNorm } from '../optim/ema.js';
import { clampLogitScale } from './logit-scale.js';
import type { ContrastiveModel } from './contrastive-model.js';
import type { DenseContext, DenseEngine, PartitionedBankEngine } from './dense-engine.js';
import { UserError } from '../../common/user-error.js';
import { KeyShard } from '../bank/key-shard.js';
import { type MemberBank, wholeBankFilled } from '../bank/member-bank.js';
import { partitionedBankDense, runsPartitionedBank, type PartitionedDenseResult } from './partitioned-bank-step.js';

/** Everything a step uses besides the model and the batch (the dense engine's part in {@link DenseContext}). */
export interface StepContext extends Omit<DenseContext, 'bank'> {
  /** The bank as this member holds it: all of it, or its shard (bank.mode partitioned). */
  bank: MemberBank;
  transport: BankTransport;
  reducer: GradientReducer;
  adam: Adam;
  /** This worker's rank: the producer id of its bank messages. */
  rank: number;
  /** The generation and world size steps are computed in (bank messages carry them). */
  round: ExchangeRound;
  /** CLIP's clamp on the learned logit scale. */
  maxLogitScale: number;
  maxGradNorm: number | null;
  /**
   * Constant c subtracted from the critic before the NWJ value, estimated from earlier logged steps as
   * NWJ's optimal constant log E_neg[e^T] − 1. Any critic fixed before the batch gives a valid NWJ bound;
   * without the shift a critic at τ = 0.07 reports NWJ in the −10⁴ nats, which says nothing.
   */
  nwjShift: number;
  /** The engine that runs the step's dense math (towers, objective, critic scores). */
  engine: DenseEngine;
  /**
   * Sees, and may change, this member's dense gradient before it is checked and reduced: the seam
   * through which tests inject a fault (a non-finite gradient on one worker).
   */
  localGradientHook?: (grad: Float32Array, step: number) => void;
}

/** Why a step was refused instead of applied. */
export type RefusedStep = 'non_finite_step';

/** What one step reports. */
export interface StepResult {
  loss: number;
  /** Logit scale 1/τ used this step. */
  scale: number;
  /** log of the number of candidates per row. */
  ceiling: number;
  gradNorm: number;
  /** Present on logged steps: every bound of the critic on this batch, and the (K+1)-way accuracy. */
  bounds?: BoundValues;
  accuracy?: number;
  /** With a partitioned bank, on a logged step: the whole bank's digest (every shard's) and this member's shard's. */
  bankDigest?: string;
  bankShardDigest?: string;
  computeMs: number;
  allReduceMs: number;
  bankWaitMs: number;
}

/**
 * A step whose gradients and keys have been exchanged with every peer but not applied yet. A worker
 * applies it only once the coordinator committed the step, so a step that a membership change
 * discards leaves the model untouched: there is nothing to roll back.
 */
export interface PendingStep {
  step: number;
  /** World-mean dense gradient. */
  grad: Float32Array;
  /** World-mean sparse row gradients, per table. */
  sparse: SparseRowGrad[];
  /** Every producer's keys of this step, in producer order. */
  keys: BankMessage[];
  /** What the step reports (its compute time completed by applyStep). */
  result: StepResult;
  /**
   * Set when the loss or a gradient was not finite on some member: every member then refuses the
   * step (the flag travels with the reduction, the bad values never do) and applies no gradient.
   */
  refused: RefusedStep | null;
  /** Puts back the estimator state the step moved (MINE's moving average, NWJ's shift). */
  discard(): void;
}

/**
 * One synchronous MoCo step: keys from the momentum encoder, InfoNCE against [positives; bank] with a
 * hand-written gradient, world-mean gradients, Adam on dense and Adagrad on sparse parameters, momentum
 * update, keys added to the bank. The step does not know whether the bank or the reduction is local
 * or remote.
 */
export async function contrastiveStep<B>(model: ContrastiveModel<B>, batch: B, step: number, ctx: StepContext, wantBounds: boolean): Promise<StepResult> {
  return applyStep(model, await computeStep(model, batch, step, ctx, wantBounds), ctx);
}

/** The first half of a step: forward, backward and every exchange with peers; changes no parameter. */
export async function computeStep<B>(model: ContrastiveModel<B>, batch: B, step: number, ctx: StepContext, wantBounds: boolean): Promise<PendingStep> {
  const t0 = performance.now();
  const mineBefore = ctx.mine.ema;
  const nwjBefore = ctx.nwjShift;
  const keysData = await ctx.engine.momentumKeys(model, batch, step);
  const positiveIds = model.positiveIds(batch);
  const b = positiveIds.length;
  const filled = wholeBankFilled(ctx.bank);
  const candidates = (ctx.inBatchNegatives ? b : 1) + filled;
  const dense: PartitionedDenseResult =
    ctx.bank instanceof KeyShard
      ? await partitionedBankDense(model, batch, keysData, positiveIds, step, { ...ctx, bank: ctx.bank, engine: partitionedEngine(ctx.engine) }, wantBounds)
      : await ctx.engine.step(model, batch, keysData, positiveIds, { ...ctx, bank: ctx.bank }, wantBounds && filled > 0);
  const { loss, scale: scaleValue } = dense;
  const flat = dense.grad;
  const sparse = model.sparseRowGrads(batch, dense.inputGrads);
  ctx.localGradientHook?.(flat, step);
  // The last element says whether this member's step is sound: the world's mean is positive when any
  // member's is not, and a bad member sends zeros rather than its NaNs.
  const flagged = new Float32Array(flat.length + 1);
  if (Number.isFinite(loss) && allFinite(flat) && sparse.every((g) => allFinite(g.values))) flagged.set(flat);
  else flagged[flat.length] = 1;

  let bounds: BoundValues | undefined;
  let accuracy: number | undefined;
  if (dense.critic !== undefined) {
    // Bounds are computed on the critic as trained (logQ included) but without masks, over the filled
    // bank slots: the negatives then are exactly the bank's samples from the marginal (docs/architecture.md §1).
    const rows = dense.critic;
    bounds = boundsOfRows(rows);
    accuracy = accuracyOfRows(rows);
    let meanPos = 0;
    for (let i = 0; i < b; i++) meanPos += rows.pos[i]! / b;
    // log mean_neg e^T follows from DV = mean_pos − log mean_neg e^T.
    const logMeanExpNeg = meanPos - bounds.dv;
    bounds.nwj = meanPos - ctx.nwjShift - Math.exp(-1 - ctx.nwjShift + logMeanExpNeg);
    ctx.nwjShift = logMeanExpNeg - 1;
  }
  const t1 = performance.now();

  const reduced = await ctx.reducer.allReduceMean(flagged, step);
  const refused: RefusedStep | null = reduced[flat.length]! > 0 ? 'non_finite_step' : null;
  const meanFlat = reduced.subarray(0, flat.length);
  // Clipped before the commit (the reduced gradient is this step's own), so the report carries the norm.
  const gradNorm = refused === null ? clipByGlobalNorm(meanFlat, ctx.maxGradNorm) : Number.NaN;
  // Every member knows the step is refused: none sends its rows.
  const meanSparse = refused === null ? await ctx.reducer.allGatherRowsMean(sparse, step) : [];
  const t2 = performance.now();
  const exchanged = await ctx.transport.exchange({ keys: keysData, ids: positiveIds, step, producer: ctx.rank }, ctx.round);
  const t3 = performance.now();
  return {
    step,
    grad: meanFlat,
    sparse: meanSparse,
    keys: exchanged,
    result: {
      loss,
      scale: scaleValue,
      ceiling: infonceCeiling(candidates),
      gradNorm,
      bounds,
      accuracy,
      ...(dense.bankDigest !== undefined ? { bankDigest: dense.bankDigest, bankShardDigest: dense.shardDigest! } : {}),
      computeMs: t1 - t0,
      allReduceMs: t2 - t1,
      bankWaitMs: t3 - t2,
    },
    refused,
    discard: () => {
      ctx.mine.restore(mineBefore);
      ctx.nwjShift = nwjBefore;
    },
  };
}

/**
 * The second half of a step: the optimiser updates, the momentum update and the new bank keys. A
 * refused step moves no parameter by its gradient and leaves the optimisers' state alone; the
 * momentum encoder and the bank go on as for any step, so that step-indexed state (lazy momentum
 * rows, key ages, the staleness window) stays regular.
 */
export function applyStep<B>(model: ContrastiveModel<B>, p: PendingStep, ctx: StepContext): StepResult {
  const t0 = performance.now();
  if (p.refused === null) {
    ctx.adam.apply(model.online.values, p.grad);
    clampLogitScale(model.online, ctx.maxLogitScale);
    model.applySparse(p.sparse, p.step);
  }
  model.momentumUpdate(p.step);
  ctx.bank.enqueueStep(p.keys);
  return { ...p.result, computeMs: p.result.computeMs + performance.now() - t0 };
}

function partitionedEngine(engine: DenseEngine): PartitionedBankEngine {
  if (!runsPartitionedBank(engine)) throw new UserError('bank.mode partitioned: this engine does not run a partitioned bank; use --engine onnx');
  return engine;
}

function allFinite(values: Float32Array): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) return false;
  return true;
}
