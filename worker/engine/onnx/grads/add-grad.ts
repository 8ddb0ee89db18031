import type { GradientRule } from './gradient-rule.js';
import { unbroadcast } from './unbroadcast.js';

/** d(a + b) = (dy, dy), each summed over its broadcast axes. */
export const addGrad: GradientRule = (g, node, dy) => node.inputs.map((x) => () => unbroadcast(g, dy, x.shape));
