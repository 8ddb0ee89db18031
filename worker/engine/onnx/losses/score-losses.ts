import type { GraphBuilder, Value } from '../graph-builder.js';
import { add } from '../ops/add.js';
import { exp } from '../ops/exp.js';
import { log } from '../ops/log.js';
import { logSumExp } from '../ops/log-sum-exp.js';
import { mul } from '../ops/mul.js';
import { neg } from '../ops/neg.js';
import { reduceSum } from '../ops/reduce-sum.js';
import { reshape } from '../ops/reshape.js';
import { softplus } from '../ops/softplus.js';
import { stopGradient } from '../ops/stop-gradient.js';
import { sub } from '../ops/sub.js';
import { div } from '../ops/div.js';

/** The score-matrix objectives of common/estimators-losses.ts that are built as graphs here. */
export type ScoreObjective = 'nwj' | 'dv' | 'mine' | 'jsd';

/** The operands of {@link scoreLoss}: a critic's scores split into each row's positive and its negatives. */
export interface ScoreOperands {
  /** Each row's positive score, B×1. */
  positive: Value;
  /** Each row's negatives, B×N; a masked negative (an empty bank slot, the diagonal) holds a large negative value. */
  negatives: Value;
  /** The number of negatives that count (unmasked), a scalar. */
  negCount: Value;
  /**
   * MINE only: log of the denominator its gradient uses (its moving average), a scalar, and whether
   * to use the batch's own instead (1 before the average has a value, else 0).
   */
  mine?: { logDenominator: Value; useBatch: Value };
}

/** What {@link scoreLoss} builds. */
export interface ScoreLoss {
  /** −bound: the objective's value. */
  loss: Value;
  /** What is differentiated: the loss, except for MINE, whose gradient uses the moving-average denominator. */
  trained: Value;
  /** log mean_neg e^s of the batch, a scalar: what MINE's moving average takes in. */
  negLogMean: Value;
}

/**
 * loss = −bound of a critic, as common/estimators-losses.ts computes it:
 *   nwj: e^{−1}·mean_neg(eˢ) − mean(pos);  dv and mine: log mean_neg(eˢ) − mean(pos);
 *   jsd: mean(softplus(−pos)) + mean_neg(softplus(s)).
 * A masked negative adds nothing: its eˢ and softplus(s) are exactly 0. MINE trains on
 * mean_neg(eˢ)/D − mean(pos) with D its (constant) denominator, whose gradient is MINE's; with the
 * batch's own D that is DV's gradient, as in common/estimators-losses.ts's first call.
 */
export function scoreLoss(g: GraphBuilder, objective: ScoreObjective, o: ScoreOperands): ScoreLoss {
  const [rows, cols] = o.negatives.shape as [number, number];
  const meanPos = mul(g, reduceSum(g, o.positive, [], false), g.scalar(1 / rows));
  // log Σ over every negative of the batch, as one row.
  const negLse = reshape(g, logSumExp(g, reshape(g, o.negatives, [1, rows * cols]), 1), []);
  const negLogMean = sub(g, negLse, log(g, o.negCount));
  const dv = sub(g, negLogMean, meanPos);
  switch (objective) {
    case 'nwj': {
      const loss = sub(g, exp(g, sub(g, negLogMean, g.scalar(1))), meanPos);
      return { loss, trained: loss, negLogMean };
    }
    case 'dv':
      return { loss: dv, trained: dv, negLogMean };
    case 'mine': {
      if (o.mine === undefined) throw new Error(`graph ${g.name}: MINE needs its denominator`);
      const { logDenominator, useBatch } = o.mine;
      const denominator = add(g, mul(g, useBatch, negLogMean), mul(g, sub(g, g.scalar(1), useBatch), logDenominator));
      const trained = sub(g, exp(g, sub(g, negLogMean, stopGradient(g, denominator))), meanPos);
      return { loss: dv, trained, negLogMean };
    }
    case 'jsd': {
      const loss = add(
        g,
        mul(g, reduceSum(g, softplus(g, neg(g, o.positive)), [], false), g.scalar(1 / rows)),
        div(g, reduceSum(g, softplus(g, o.negatives), [], false), o.negCount),
      );
      return { loss, trained: loss, negLogMean };
    }
  }
}
