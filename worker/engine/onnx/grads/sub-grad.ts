import { neg } from '../ops/neg.js';
import type { GradientRule } from './gradient-rule.js';
import { unbroadcast } from './unbroadcast.js';

/** d(a − b) = (dy, −dy). */
export const subGrad: GradientRule = (g, node, dy) => {
  const [a, b] = node.inputs;
  return [() => unbroadcast(g, dy, a!.shape), () => unbroadcast(g, neg(g, dy), b!.shape)];
};
