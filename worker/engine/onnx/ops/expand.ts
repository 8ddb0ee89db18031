import type { GraphBuilder, Value } from '../graph-builder.js';
import { broadcastShape } from './broadcast.js';

/** `x` broadcast to `shape`. */
export function expand(g: GraphBuilder, x: Value, shape: readonly number[]): Value {
  return g.node('Expand', [x, g.int64s(shape)], broadcastShape(x.shape, shape));
}
