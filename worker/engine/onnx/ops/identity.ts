import type { GraphBuilder, Value } from '../graph-builder.js';

/** `x` under a new name (a graph output of its own, say). */
export function identity(g: GraphBuilder, x: Value): Value {
  return g.node('Identity', [x], x.shape);
}
