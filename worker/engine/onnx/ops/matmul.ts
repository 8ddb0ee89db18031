import type { GraphBuilder, Value } from '../graph-builder.js';

/** a · b for matrices [m, k] · [k, n]. */
export function matMul(g: GraphBuilder, a: Value, b: Value): Value {
  const [m, k] = a.shape;
  const [k2, n] = b.shape;
  if (a.shape.length !== 2 || b.shape.length !== 2 || k !== k2) throw new Error(`MatMul of [${a.shape.join(', ')}] and [${b.shape.join(', ')}]`);
  return g.node('MatMul', [a, b], [m!, n!]);
}
