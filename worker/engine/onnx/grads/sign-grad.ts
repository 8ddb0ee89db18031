import type { GradientRule } from './gradient-rule.js';

/** sign(x) is flat wherever it is differentiable: no gradient flows through it. */
export const signGrad: GradientRule = () => [null];
