import { neg } from '../ops/neg.js';
import type { GradientRule } from './gradient-rule.js';

/** d(−x) = −dy. */
export const negGrad: GradientRule = (g, _node, dy) => [() => neg(g, dy)];
