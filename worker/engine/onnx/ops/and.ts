import type { GraphBuilder, Value } from '../graph-builder.js';
import { broadcastShape } from './broadcast.js';

/** a ∧ b elementwise with broadcasting, on bool tensors. */
export function and(g: GraphBuilder, a: Value, b: Value): Value {
  if (a.type !== 'bool' || b.type !== 'bool') throw new Error(`graph ${g.name}: And of ${a.type} and ${b.type}`);
  return g.node('And', [a, b], broadcastShape(a.shape, b.shape), {}, 'bool');
}
