import type { GraphBuilder, Value } from '../graph-builder.js';
import { binary } from './broadcast.js';

/** a Mul b, elementwise with broadcasting. */
export function mul(g: GraphBuilder, a: Value, b: Value): Value {
  return binary(g, 'Mul', a, b);
}
