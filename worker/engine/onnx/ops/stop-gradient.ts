import type { GraphBuilder, Value } from '../graph-builder.js';

/** `x` itself, seen by differentiation as a constant (tf.stopGradient): a max subtracted for stability, say. */
export function stopGradient(g: GraphBuilder, x: Value): Value {
  const y = g.node('Identity', [x], x.shape);
  g.stopGradient(y);
  return y;
}
