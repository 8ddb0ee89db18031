import type { GraphBuilder, Value } from '../graph-builder.js';

/** `x` with zeros added: `before[i]` elements ahead of axis i and `after[i]` behind it. */
export function pad(g: GraphBuilder, x: Value, before: readonly number[], after: readonly number[]): Value {
  if (before.length !== x.shape.length || after.length !== x.shape.length) throw new Error(`Pad of a rank-${x.shape.length} value`);
  // Opset 11 and later take the pads as an input: all the befores, then all the afters.
  return g.node(
    'Pad',
    [x, g.int64s([...before, ...after])],
    x.shape.map((d, i) => d + before[i]! + after[i]!),
    {},
  );
}
