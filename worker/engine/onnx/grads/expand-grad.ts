import type { GradientRule } from './gradient-rule.js';
import { unbroadcast } from './unbroadcast.js';

/** d expand(x) = dy summed over the broadcast axes. */
export const expandGrad: GradientRule = (g, node, dy) => [() => unbroadcast(g, dy, node.inputs[0]!.shape), null];
