import type { GraphBuilder, Value } from '../graph-builder.js';
import { binary } from './broadcast.js';

/** a Sub b, elementwise with broadcasting. */
export function sub(g: GraphBuilder, a: Value, b: Value): Value {
  return binary(g, 'Sub', a, b);
}
