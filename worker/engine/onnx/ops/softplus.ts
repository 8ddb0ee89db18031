import type { GraphBuilder, Value } from '../graph-builder.js';

/** log(1 + eˣ), elementwise. */
export function softplus(g: GraphBuilder, x: Value): Value {
  return g.node('Softplus', [x], x.shape);
}
