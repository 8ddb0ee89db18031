import type { GraphBuilder, Value } from '../graph-builder.js';
import { reduceSum } from '../ops/reduce-sum.js';
import { reshape } from '../ops/reshape.js';

/** The gradient of an operand that was broadcast to dy's shape: dy summed over the broadcast axes. */
export function unbroadcast(g: GraphBuilder, dy: Value, shape: readonly number[]): Value {
  const lead = dy.shape.length - shape.length;
  const axes = dy.shape.map((_, i) => i).filter((i) => i < lead || (shape[i - lead] === 1 && dy.shape[i] !== 1));
  if (axes.length === 0) return dy;
  return reshape(g, reduceSum(g, dy, axes, true), shape);
}
