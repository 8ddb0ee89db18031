import { reshape } from '../ops/reshape.js';
import type { GradientRule } from './gradient-rule.js';

/** d reshape(x) = dy in x's shape. */
export const reshapeGrad: GradientRule = (g, node, dy) => [() => reshape(g, dy, node.inputs[0]!.shape), null];
