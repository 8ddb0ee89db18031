import { gemm } from '../ops/gemm.js';
import type { GradientRule } from './gradient-rule.js';

/** d(a · b) = (dy · bᵀ, aᵀ · dy), the transposes folded into Gemm. */
export const matMulGrad: GradientRule = (g, node, dy) => {
  const [a, b] = node.inputs;
  return [() => gemm(g, dy, b!, null, { transB: true }), () => gemm(g, a!, dy, null, { transA: true })];
};
