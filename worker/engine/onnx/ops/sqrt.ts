import type { GraphBuilder, Value } from '../graph-builder.js';

/** Sqrt(x), elementwise. */
export function sqrt(g: GraphBuilder, x: Value): Value {
  return g.node('Sqrt', [x], x.shape);
}
