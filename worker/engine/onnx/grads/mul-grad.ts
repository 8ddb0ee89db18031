import { mul } from '../ops/mul.js';
import type { GradientRule } from './gradient-rule.js';
import { unbroadcast } from './unbroadcast.js';

/** d(a · b) = (dy · b, dy · a). */
export const mulGrad: GradientRule = (g, node, dy) => {
  const [a, b] = node.inputs;
  return [() => unbroadcast(g, mul(g, dy, b!), a!.shape), () => unbroadcast(g, mul(g, dy, a!), b!.shape)];
};
