import type { GraphBuilder, Value } from '../graph-builder.js';

/**
 * Largest element of `x` over `axes`, kept as size-1 dimensions. Used under stopGradient (the shift
 * of a log-sum-exp), so it has no gradient rule.
 */
export function reduceMax(g: GraphBuilder, x: Value, axes: readonly number[]): Value {
  const rank = x.shape.length;
  const over = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
  // Opset 17's ReduceMax takes its axes as an attribute (an input only from opset 18).
  return g.node(
    'ReduceMax',
    [x],
    x.shape.map((d, i) => (over.has(i) ? 1 : d)),
    { axes: { kind: 'ints', value: [...over].sort((p, q) => p - q) }, keepdims: { kind: 'int', value: 1 } },
  );
}
