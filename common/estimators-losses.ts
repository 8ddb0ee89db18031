import * as tf from '@tensorflow/tfjs-core';
import { assertScoreShape, type Estimator, type ScoreLayout } from './estimators.js';

/*
 * Differentiable losses (loss = −bound, so minimising raises the bound) on a score tensor. Each loss
 * is a tf.customGrad with its gradient written in closed form: it needs no registered op gradients,
 * costs one elementwise pass instead of autodiff through logSumExp, and lets MINE's gradient differ
 * from its value. The tests check every gradient against finite differences of `boundValues`.
 */

/** A score tensor split by layout; in `'diagonal'`, `neg` holds −∞ where the positives were. */
interface Parts {
  readonly s: tf.Tensor2D;
  /** Each row's positive score, [rows]. */
  readonly pos: tf.Tensor1D;
  /** The negatives: [rows, cols−1] for `'first'`, [rows, cols] with a −∞ diagonal for `'diagonal'`. */
  readonly neg: tf.Tensor2D;
  readonly rows: number;
  readonly cols: number;
  /** rows·(cols−1). */
  readonly negCount: number;
}

/** Splits scores into positives and negatives: a slice for `'first'`, an identity-mask select for `'diagonal'`. */
function split(s: tf.Tensor2D, layout: ScoreLayout): Parts {
  const [rows, cols] = s.shape;
  const negCount = rows * (cols - 1);
  if (layout === 'first') {
    const pos = tf.reshape(tf.slice(s, [0, 0], [rows, 1]), [rows]) as tf.Tensor1D;
    return { s, pos, neg: tf.slice(s, [0, 1], [rows, cols - 1]), rows, cols, negCount };
  }
  const eye = tf.eye(rows, cols, undefined, 'bool');
  // A select, not a multiply by the mask: 0·∞ would be NaN for a −∞ (masked) negative.
  const pos = tf.sum(tf.where(eye, s, tf.zerosLike(s)), 1) as tf.Tensor1D;
  return { s, pos, neg: tf.where(eye, -Infinity, s), rows, cols, negCount };
}

/** Puts per-positive and per-negative gradients back into the [rows, cols] layout. */
function assemble(p: Parts, layout: ScoreLayout, posGrad: tf.Tensor1D, negGrad: tf.Tensor2D): tf.Tensor2D {
  const column = tf.reshape(posGrad, [p.rows, 1]) as tf.Tensor2D;
  if (layout === 'first') return tf.concat([column, negGrad], 1);
  return tf.where(tf.eye(p.rows, p.cols, undefined, 'bool'), column, negGrad);
}

/** Loss value, plus the tensors its gradient reuses (kept alive until the backward pass). */
interface Forward {
  readonly value: tf.Scalar;
  readonly saved?: readonly tf.Tensor[];
}

/** The loss gradient with respect to the positives and the negatives of `Parts`. */
interface Backward {
  readonly pos: tf.Tensor1D;
  readonly neg: tf.Tensor2D;
}

/** A scalar loss with a closed-form gradient, on a validated score matrix. */
function scoreLoss(
  scores: tf.Tensor2D,
  layout: ScoreLayout,
  forward: (p: Parts) => Forward,
  backward: (p: Parts, saved: readonly tf.Tensor[]) => Backward,
): tf.Scalar {
  if (scores.rank !== 2 || scores.dtype !== 'float32') {
    throw new Error(`scores must be a float32 matrix, got ${scores.dtype} of shape [${scores.shape.join(', ')}]`);
  }
  assertScoreShape(scores.shape[0], scores.shape[1], layout);
  const loss = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const s = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    const { value, saved = [] } = forward(split(s, layout));
    save([s, ...saved]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, kept: tf.Tensor[]) => {
        const [ks, ...rest] = kept as [tf.Tensor2D, ...tf.Tensor[]];
        const p = split(ks, layout);
        const g = backward(p, rest);
        return tf.mul(assemble(p, layout, g.pos, g.neg), dy);
      },
    };
  });
  return loss(scores) as tf.Scalar;
}

/** log Σ e^s over all negatives, a scalar. */
function negLogSumExp(p: Parts): tf.Scalar {
  return tf.logSumExp(p.neg);
}

/** −1/rows for every positive: the gradient of −mean(pos). */
function meanPosGrad(p: Parts): tf.Tensor1D {
  return tf.fill([p.rows], -1 / p.rows) as tf.Tensor1D;
}

/**
 * −InfoNCE = mean_i(logsumexp_j s_ij − s_i,pos) − log N, N = cols (cross-entropy minus log N).
 * Gradient: (softmax_ij − [j is i's positive]) / rows.
 */
export function infonceLoss(scores: tf.Tensor2D, layout: ScoreLayout): tf.Scalar {
  return scoreLoss(
    scores,
    layout,
    (p) => {
      const lse = tf.logSumExp(p.s, 1);
      return { value: tf.sub(tf.mean(tf.sub(lse, p.pos)), Math.log(p.cols)), saved: [lse] };
    },
    (p, [lse]) => {
      const rowLse = tf.reshape(lse!, [p.rows, 1]);
      return {
        pos: tf.div(tf.expm1(tf.sub(p.pos, lse!)), p.rows) as tf.Tensor1D,
        neg: tf.div(tf.exp(tf.sub(p.neg, rowLse)), p.rows),
      };
    },
  );
}

/** −NWJ = e^{−1}·mean_neg(e^s) − mean(pos). Gradient on a negative: e^{s−1} / negCount. */
export function nwjLoss(scores: tf.Tensor2D, layout: ScoreLayout): tf.Scalar {
  return scoreLoss(
    scores,
    layout,
    (p) => ({ value: tf.sub(tf.exp(tf.sub(negLogSumExp(p), Math.log(p.negCount) + 1)), tf.mean(p.pos)) }),
    (p) => ({ pos: meanPosGrad(p), neg: tf.exp(tf.sub(p.neg, 1 + Math.log(p.negCount))) }),
  );
}

/** The DV loss value log mean_neg(e^s) − mean(pos), given log Σ_neg e^s; shared by DV and MINE. */
function negDv(p: Parts, negLse: tf.Scalar): tf.Scalar {
  return tf.sub(tf.sub(negLse, Math.log(p.negCount)), tf.mean(p.pos));
}

/** −DV = log mean_neg(e^s) − mean(pos). Gradient on a negative: its softmax weight among all negatives. */
export function dvLoss(scores: tf.Tensor2D, layout: ScoreLayout): tf.Scalar {
  return scoreLoss(
    scores,
    layout,
    (p) => {
      const lse = negLogSumExp(p);
      return { value: negDv(p, lse), saved: [lse] };
    },
    (p, [lse]) => ({ pos: meanPosGrad(p), neg: tf.exp(tf.sub(p.neg, lse!)) }),
  );
}

/** −JSD = mean(softplus(−pos)) + mean_neg(softplus(s)). Gradients: −σ(−pos)/rows and σ(s)/negCount. */
export function jsdLoss(scores: tf.Tensor2D, layout: ScoreLayout): tf.Scalar {
  return scoreLoss(
    scores,
    layout,
    // softplus(−∞) = 0, so the −∞ placeholders of the diagonal layout add nothing to the sum.
    (p) => ({ value: tf.add(tf.mean(tf.softplus(tf.neg(p.pos))), tf.div(tf.sum(tf.softplus(p.neg)), p.negCount)) }),
    (p) => ({
      pos: tf.div(tf.neg(tf.sigmoid(tf.neg(p.pos))), p.rows) as tf.Tensor1D,
      neg: tf.div(tf.sigmoid(p.neg), p.negCount),
    }),
  );
}

/** Options of {@link MineLoss}. */
export interface MineOptions {
  /** Moving-average rate of the denominator (Belghazi et al. 2018); default 0.01. */
  readonly alpha?: number;
  /** A denominator restored from a checkpoint; by default the first batch initialises it. */
  readonly ema?: number;
}

/**
 * MINE (Belghazi et al. 2018): the loss value is −DV of the batch, but the gradient replaces the
 * batch's denominator mean_neg(e^s) by its exponential moving average, which removes the bias a
 * minibatch denominator puts into the gradient:
 * gradient of −(mean(pos) − mean_neg(e^s)/ema). The average is plain JS state: each call uses the
 * average as it stood before the call (the batch's own value on the first call), then folds the batch
 * in. Call it once per training step; checkpoint {@link MineLoss.ema} and bring it back with
 * {@link MineLoss.restore}.
 */
export class MineLoss {
  /** Moving-average rate of the denominator. */
  readonly alpha: number;
  private average: number | undefined;

  constructor({ alpha = 0.01, ema }: MineOptions = {}) {
    if (!(alpha > 0 && alpha <= 1)) throw new Error(`MINE alpha must be in (0, 1], got ${alpha}`);
    this.alpha = alpha;
    this.restore(ema);
  }

  /** The moving average of mean_neg(e^s), or undefined before the first batch. */
  get ema(): number | undefined {
    return this.average;
  }

  /** Sets the moving average (from a checkpoint); undefined starts afresh from the next batch. */
  restore(ema: number | undefined): void {
    if (ema !== undefined && !(ema > 0 && Number.isFinite(ema))) {
      throw new Error(`MINE moving average must be a positive finite number, got ${ema}`);
    }
    this.average = ema;
  }

  /**
   * Folds a batch's log mean_neg(e^s) into the moving average (the first batch sets it), as
   * {@link MineLoss.loss} does; an engine that computes MINE's gradient elsewhere calls it once a step.
   */
  observe(batchLogMean: number): void {
    const batchMean = Math.exp(batchLogMean);
    // A batch without a usable denominator (NaN scores, every negative masked) must not poison the average.
    if (batchMean > 0 && Number.isFinite(batchMean)) {
      this.average = this.average === undefined ? batchMean : (1 - this.alpha) * this.average + this.alpha * batchMean;
    }
  }

  /** −DV of the batch, with MINE's gradient; updates the moving average. */
  loss(scores: tf.Tensor2D, layout: ScoreLayout): tf.Scalar {
    let batchLogMean = NaN;
    let logDenominator = NaN;
    const loss = scoreLoss(
      scores,
      layout,
      (p) => {
        const lse = negLogSumExp(p);
        // Read the denominator back: the average is plain state, not a tensor on the tape.
        batchLogMean = lse.dataSync()[0]! - Math.log(p.negCount);
        logDenominator = this.average === undefined ? batchLogMean : Math.log(this.average);
        return { value: negDv(p, lse) };
      },
      (p) => ({ pos: meanPosGrad(p), neg: tf.exp(tf.sub(p.neg, logDenominator + Math.log(p.negCount))) }),
    );
    this.observe(batchLogMean);
    return loss;
  }
}

/**
 * The loss of any {@link Estimator} by name. `mine` needs the run's {@link MineLoss}, which carries
 * the moving average across steps.
 */
export function estimatorLoss(name: Estimator, scores: tf.Tensor2D, layout: ScoreLayout, mine?: MineLoss): tf.Scalar {
  switch (name) {
    case 'infonce':
      return infonceLoss(scores, layout);
    case 'nwj':
      return nwjLoss(scores, layout);
    case 'dv':
      return dvLoss(scores, layout);
    case 'jsd':
      return jsdLoss(scores, layout);
    case 'mine':
      if (mine === undefined) throw new Error('the MINE loss needs its MineLoss state (the moving average)');
      return mine.loss(scores, layout);
  }
}
