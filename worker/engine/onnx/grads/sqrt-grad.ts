import { div } from '../ops/div.js';
import { mul } from '../ops/mul.js';
import type { GradientRule } from './gradient-rule.js';

/** d sqrt(x) = dy / (2 y). */
export const sqrtGrad: GradientRule = (g, node, dy) => [() => div(g, mul(g, dy, g.scalar(0.5)), node.output)];
