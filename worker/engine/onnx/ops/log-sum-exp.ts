import type { GraphBuilder, Value } from '../graph-builder.js';
import { add } from './add.js';
import { exp } from './exp.js';
import { log } from './log.js';
import { reduceMax } from './reduce-max.js';
import { reduceSum } from './reduce-sum.js';
import { stopGradient } from './stop-gradient.js';
import { sub } from './sub.js';

/**
 * log Σ exp(x) over `axis`, kept as a size-1 dimension: shifted by the (stopped) maximum so that
 * exp never overflows; the shift cancels in the value and in the gradient, which is softmax(x).
 */
export function logSumExp(g: GraphBuilder, x: Value, axis: number): Value {
  const m = stopGradient(g, reduceMax(g, x, [axis]));
  return add(g, log(g, reduceSum(g, exp(g, sub(g, x, m)), [axis], true)), m);
}
