import type { GraphBuilder, Value } from '../graph-builder.js';
import { broadcastShape } from './broadcast.js';

/**
 * `x` where `condition` holds, else `y`, with broadcasting. Used to build masks from constants, so it
 * has no gradient rule: a parameter on its path fails the graph's build with "no gradient rule".
 */
export function where(g: GraphBuilder, condition: Value, x: Value, y: Value): Value {
  if (condition.type !== 'bool') throw new Error(`graph ${g.name}: Where takes a bool condition, not ${condition.type}`);
  return g.node('Where', [condition, x, y], broadcastShape(condition.shape, broadcastShape(x.shape, y.shape)));
}
