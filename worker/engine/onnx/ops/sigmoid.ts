import type { GraphBuilder, Value } from '../graph-builder.js';

/** 1 / (1 + e⁻ˣ), elementwise. */
export function sigmoid(g: GraphBuilder, x: Value): Value {
  return g.node('Sigmoid', [x], x.shape);
}
