import type { GradientRule } from './gradient-rule.js';

/** d identity(x) = dy (a stopped Identity is never differentiated). */
export const identityGrad: GradientRule = (_g, _node, dy) => [() => dy];
