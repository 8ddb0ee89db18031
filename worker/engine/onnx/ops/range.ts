import type { GraphBuilder, Value } from '../graph-builder.js';

/** 0, 1, …, n − 1 as floats, for a scalar `n` known at run time; `length` is its (symbolic) size. */
export function range(g: GraphBuilder, n: Value, length: number): Value {
  if (n.shape.length !== 0) throw new Error(`Range up to a tensor of shape [${n.shape.join(', ')}]`);
  return g.node('Range', [g.scalar(0), n, g.scalar(1)], [length]);
}
