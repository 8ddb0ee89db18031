import { gemm } from '../ops/gemm.js';
import type { GradientRule } from './gradient-rule.js';
import { unbroadcast } from './unbroadcast.js';

/**
 * y = op(a) · op(b) + c. With op(a) = a: da = dy · op(b)ᵀ; with op(a) = aᵀ: da = op(b) · dyᵀ. With
 * op(b) = b: db = op(a)ᵀ · dy; with op(b) = bᵀ: db = dyᵀ · op(a). dc = dy over c's broadcast axes.
 */
export const gemmGrad: GradientRule = (g, node, dy) => {
  const [a, b, c] = node.inputs;
  const transA = node.attributes.transA?.value === 1;
  const transB = node.attributes.transB?.value === 1;
  const da = () => (transA ? gemm(g, b!, dy, null, { transA: transB, transB: true }) : gemm(g, dy, b!, null, { transB: !transB }));
  const db = () => (transB ? gemm(g, dy, a!, null, { transA: true, transB: transA }) : gemm(g, a!, dy, null, { transA: !transA }));
  return c === undefined ? [da, db] : [da, db, () => unbroadcast(g, dy, c.shape)];
};
