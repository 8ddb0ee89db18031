import type { GraphBuilder, Value } from '../graph-builder.js';

/** Relu(x), elementwise. */
export function relu(g: GraphBuilder, x: Value): Value {
  return g.node('Relu', [x], x.shape);
}
