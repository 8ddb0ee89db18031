import type { GraphBuilder, Value } from '../graph-builder.js';
import { broadcastShape } from './broadcast.js';

/** a ≥ b elementwise with broadcasting, a bool tensor (masks; no gradient). */
export function greaterOrEqual(g: GraphBuilder, a: Value, b: Value): Value {
  return g.node('GreaterOrEqual', [a, b], broadcastShape(a.shape, b.shape), {}, 'bool');
}
