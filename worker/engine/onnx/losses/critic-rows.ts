import type { GraphBuilder, Value } from '../graph-builder.js';
import { concat } from '../ops/concat.js';
import { logSumExp } from '../ops/log-sum-exp.js';
import { reduceMax } from '../ops/reduce-max.js';
import { reduceSum } from '../ops/reduce-sum.js';
import { softplus } from '../ops/softplus.js';
import type { BankCritic } from './bank-critic.js';

/** The columns of {@link criticRowsGraph}'s output, in order: the fields of common/estimators.ts's CriticRows. */
export const CRITIC_ROW_COLUMNS = ['pos', 'negLogSumExp', 'negMax', 'negSoftplus'] as const;

/**
 * The critic's row statistics (common/estimators.ts's CriticRows) as a B×4 matrix: each row's
 * positive, log Σ e^s and max over its negatives, and Σ softplus(s) over them. Every bound follows
 * from these, so a logged step reads B×4 values instead of the B×(K+1) scores.
 */
export function criticRowsGraph(g: GraphBuilder, c: BankCritic): Value {
  const columns = [c.positive, logSumExp(g, c.negatives, 1), reduceMax(g, c.negatives, [1]), reduceSum(g, softplus(g, c.negatives), [1], true)];
  return concat(g, columns, 1);
}
