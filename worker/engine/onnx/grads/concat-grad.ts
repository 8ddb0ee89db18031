import { slice } from '../ops/slice.js';
import type { GradientRule } from './gradient-rule.js';

/** d concat(xs) = the slices of dy where each input sits. */
export const concatGrad: GradientRule = (g, node, dy) => {
  const axis = node.attributes.axis?.value as number;
  let start = 0;
  return node.inputs.map((x) => {
    const from = start;
    start += x.shape[axis]!;
    return () => slice(g, dy, axis, from, from + x.shape[axis]!);
  });
};
