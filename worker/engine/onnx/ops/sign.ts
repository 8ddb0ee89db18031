import type { GraphBuilder, Value } from '../graph-builder.js';

/** Sign(x), elementwise. */
export function sign(g: GraphBuilder, x: Value): Value {
  return g.node('Sign', [x], x.shape);
}
