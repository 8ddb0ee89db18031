import type { GraphBuilder, Value } from '../graph-builder.js';
import { binary } from './broadcast.js';

/** a Add b, elementwise with broadcasting. */
export function add(g: GraphBuilder, a: Value, b: Value): Value {
  return binary(g, 'Add', a, b);
}
