import { mul } from '../ops/mul.js';
import type { GradientRule } from './gradient-rule.js';

/** d exp(x) = dy · y. */
export const expGrad: GradientRule = (g, node, dy) => [() => mul(g, dy, node.output)];
