import type { GraphBuilder, Value } from '../graph-builder.js';
import { binary } from './broadcast.js';

/** a Div b, elementwise with broadcasting. */
export function div(g: GraphBuilder, a: Value, b: Value): Value {
  return binary(g, 'Div', a, b);
}
