import type { GraphBuilder, Value } from '../graph-builder.js';

/** Log(x), elementwise. */
export function log(g: GraphBuilder, x: Value): Value {
  return g.node('Log', [x], x.shape);
}
