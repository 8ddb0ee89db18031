import type { GraphBuilder, Value } from '../graph-builder.js';

/** The run-time shape of `x`, a 1-D int64 tensor: how a graph with a dynamic dimension reads its size. */
export function shapeOf(g: GraphBuilder, x: Value): Value {
  return g.node('Shape', [x], [x.shape.length], {}, 'int64');
}
