import { mul } from '../ops/mul.js';
import { sigmoid } from '../ops/sigmoid.js';
import type { GradientRule } from './gradient-rule.js';

/** d softplus(x) = dy · σ(x). */
export const softplusGrad: GradientRule = (g, node, dy) => [() => mul(g, dy, sigmoid(g, node.inputs[0]!))];
