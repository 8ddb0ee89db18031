import type { GraphBuilder, Value } from '../graph-builder.js';
import { broadcastShape } from './broadcast.js';

/** `x` where `condition` holds, else `y`, with broadcasting: a mask that replaces values outright. */
export function where(g: GraphBuilder, condition: Value, x: Value, y: Value): Value {
  if (condition.type !== 'bool') throw new Error(`graph ${g.name}: Where takes a bool condition, not ${condition.type}`);
  return g.node('Where', [condition, x, y], broadcastShape(condition.shape, broadcastShape(x.shape, y.shape)));
}
