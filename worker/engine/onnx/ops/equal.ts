import type { GraphBuilder, Value } from '../graph-builder.js';
import { broadcastShape } from './broadcast.js';

/** a == b elementwise with broadcasting, a bool tensor. Used on ids (masks), never on a gradient's path. */
export function equal(g: GraphBuilder, a: Value, b: Value): Value {
  if (a.type !== b.type) throw new Error(`graph ${g.name}: Equal of ${a.type} and ${b.type}`);
  return g.node('Equal', [a, b], broadcastShape(a.shape, b.shape), {}, 'bool');
}
