import type { GraphBuilder, Value } from '../graph-builder.js';

/** Sum of `x` over `axes` (all axes when empty), keeping them as size-1 dimensions or dropping them. */
export function reduceSum(g: GraphBuilder, x: Value, axes: readonly number[], keepDims: boolean): Value {
  const rank = x.shape.length;
  const over = new Set((axes.length === 0 ? x.shape.map((_, i) => i) : axes).map((a) => (a < 0 ? a + rank : a)));
  for (const a of over) if (a < 0 || a >= rank) throw new Error(`ReduceSum over axis ${a} of a rank-${rank} value`);
  const shape = keepDims ? x.shape.map((d, i) => (over.has(i) ? 1 : d)) : x.shape.filter((_, i) => !over.has(i));
  // Opset 13 and later take the axes as an input.
  return g.node('ReduceSum', [x, g.int64s([...over].sort((p, q) => p - q))], shape, { keepdims: { kind: 'int', value: keepDims ? 1 : 0 } });
}
