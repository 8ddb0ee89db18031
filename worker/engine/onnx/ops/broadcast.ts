import type { GraphBuilder, Value } from '../graph-builder.js';

/** The shape two operands broadcast to (NumPy rules, as ONNX's elementwise operators use). */
export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** A broadcasting elementwise binary operator node. */
export function binary(g: GraphBuilder, op: string, a: Value, b: Value): Value {
  return g.node(op, [a, b], broadcastShape(a.shape, b.shape));
}
