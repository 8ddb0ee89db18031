import type { GraphBuilder, Value } from '../graph-builder.js';

/** Neg(x), elementwise. */
export function neg(g: GraphBuilder, x: Value): Value {
  return g.node('Neg', [x], x.shape);
}
