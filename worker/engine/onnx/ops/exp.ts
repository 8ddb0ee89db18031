import type { GraphBuilder, Value } from '../graph-builder.js';

/** Exp(x), elementwise. */
export function exp(g: GraphBuilder, x: Value): Value {
  return g.node('Exp', [x], x.shape);
}
