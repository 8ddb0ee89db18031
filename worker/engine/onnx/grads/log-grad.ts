import { div } from '../ops/div.js';
import type { GradientRule } from './gradient-rule.js';

/** d log(x) = dy / x. */
export const logGrad: GradientRule = (g, node, dy) => [() => div(g, dy, node.inputs[0]!)];
