import { mul } from '../ops/mul.js';
import { sign } from '../ops/sign.js';
import type { GradientRule } from './gradient-rule.js';

/** d relu(x) = dy where y > 0, else 0: sign(y) is exactly that mask, since y ≥ 0. */
export const reluGrad: GradientRule = (g, node, dy) => [() => mul(g, dy, sign(g, node.output))];
