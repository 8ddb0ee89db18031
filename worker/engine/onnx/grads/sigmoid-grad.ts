import { mul } from '../ops/mul.js';
import { sub } from '../ops/sub.js';
import type { GradientRule } from './gradient-rule.js';

/** d σ(x) = dy · y · (1 − y). */
export const sigmoidGrad: GradientRule = (g, node, dy) => [() => mul(g, mul(g, dy, node.output), sub(g, g.scalar(1), node.output))];
