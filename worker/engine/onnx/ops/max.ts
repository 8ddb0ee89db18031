import type { GraphBuilder, Value } from '../graph-builder.js';
import { binary } from './broadcast.js';

/** The larger of a and b, elementwise with broadcasting (a floor on a divisor, say: no gradient rule). */
export function max(g: GraphBuilder, a: Value, b: Value): Value {
  return binary(g, 'Max', a, b);
}
