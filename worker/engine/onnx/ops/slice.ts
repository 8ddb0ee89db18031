import type { GraphBuilder, Value } from '../graph-builder.js';

/** Elements [start, end) of `x` along `axis`. */
export function slice(g: GraphBuilder, x: Value, axis: number, start: number, end: number): Value {
  const a = axis < 0 ? axis + x.shape.length : axis;
  if (!(start >= 0 && start <= end && end <= x.shape[a]!)) throw new Error(`Slice [${start}, ${end}) of axis ${a} of [${x.shape.join(', ')}]`);
  return g.node(
    'Slice',
    [x, g.int64s([start]), g.int64s([end]), g.int64s([a])],
    x.shape.map((d, i) => (i === a ? end - start : d)),
  );
}
