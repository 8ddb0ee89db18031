import type { GraphBuilder, Value } from '../graph-builder.js';
import { add } from '../ops/add.js';
import { exp } from '../ops/exp.js';
import { logSumExp } from '../ops/log-sum-exp.js';
import { mul } from '../ops/mul.js';
import { neg } from '../ops/neg.js';
import { reduceSum } from '../ops/reduce-sum.js';
import { reshape } from '../ops/reshape.js';
import { slice } from '../ops/slice.js';
import { softplus } from '../ops/softplus.js';
import { sub } from '../ops/sub.js';

/** The score-matrix objectives of common/estimators-losses.ts that are built as graphs here. */
export type ScoreObjective = 'nwj' | 'dv' | 'jsd';

/**
 * loss = −bound of a score matrix in the queue layout (column 0 each row's positive, the other
 * columns its negatives), as common/estimators-losses.ts computes it:
 *   nwj: e^{−1}·mean_neg(eˢ) − mean(pos);  dv: log mean_neg(eˢ) − mean(pos);
 *   jsd: mean(softplus(−pos)) + mean_neg(softplus(s)).
 * Sums over the negatives are taken in log space where an exponential is involved.
 */
export function scoreLoss(g: GraphBuilder, objective: ScoreObjective, scores: Value): Value {
  const [rows, cols] = scores.shape as [number, number];
  const negCount = rows * (cols - 1);
  const pos = slice(g, scores, 1, 0, 1);
  const negatives = slice(g, scores, 1, 1, cols);
  const meanPos = mul(g, reduceSum(g, pos, [], false), g.scalar(1 / rows));
  // log Σ over every negative of the batch, as one row.
  const negLse = () => reshape(g, logSumExp(g, reshape(g, negatives, [1, negCount]), 1), []);
  switch (objective) {
    case 'nwj':
      return sub(g, exp(g, sub(g, negLse(), g.scalar(Math.log(negCount) + 1))), meanPos);
    case 'dv':
      return sub(g, sub(g, negLse(), g.scalar(Math.log(negCount))), meanPos);
    case 'jsd':
      return add(
        g,
        mul(g, reduceSum(g, softplus(g, neg(g, pos)), [], false), g.scalar(1 / rows)),
        mul(g, reduceSum(g, softplus(g, negatives), [], false), g.scalar(1 / negCount)),
      );
  }
}
