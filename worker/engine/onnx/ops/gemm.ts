import type { GraphBuilder, Value } from '../graph-builder.js';

/** Options of {@link gemm}. */
export interface GemmOptions {
  /** Use aᵀ. @default false */
  transA?: boolean;
  /** Use bᵀ. @default false */
  transB?: boolean;
}

/**
 * op(a) · op(b) (+ c, broadcast to the result), with the transposes folded into the kernel: what a
 * dense layer and the matrix gradients use, without an explicit Transpose node.
 */
export function gemm(g: GraphBuilder, a: Value, b: Value, c: Value | null = null, o: GemmOptions = {}): Value {
  if (a.shape.length !== 2 || b.shape.length !== 2) throw new Error(`Gemm of [${a.shape.join(', ')}] and [${b.shape.join(', ')}]`);
  const [m, k] = o.transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const [k2, n] = o.transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
  if (k !== k2) throw new Error(`Gemm: op(a) is ${m}×${k}, op(b) is ${k2}×${n}`);
  const attributes = { transA: { kind: 'int', value: o.transA ? 1 : 0 }, transB: { kind: 'int', value: o.transB ? 1 : 0 } } as const;
  return g.node('Gemm', c === null ? [a, b] : [a, b, c], [m, n], attributes);
}
