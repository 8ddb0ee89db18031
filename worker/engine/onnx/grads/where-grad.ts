import { where } from '../ops/where.js';
import type { GradientRule } from './gradient-rule.js';
import { unbroadcast } from './unbroadcast.js';

/** d where(c, x, y) = (none, dy where c, dy where not c), each summed over its broadcast axes. */
export const whereGrad: GradientRule = (g, node, dy) => {
  const [condition, x, y] = node.inputs as [typeof dy, typeof dy, typeof dy];
  const zero = () => g.scalar(0);
  return [null, () => unbroadcast(g, where(g, condition, dy, zero()), x.shape), () => unbroadcast(g, where(g, condition, zero(), dy), y.shape)];
};
