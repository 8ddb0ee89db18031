import { expand } from '../ops/expand.js';
import { reshape } from '../ops/reshape.js';
import type { GradientRule } from './gradient-rule.js';

/** d sum(x) = dy broadcast back over the summed axes (kept as 1s, then expanded). */
export const reduceSumGrad: GradientRule = (g, node, dy) => {
  const x = node.inputs[0]!;
  const axes = g.int64Constant(node.inputs[1]!);
  const kept =
    node.attributes.keepdims?.value === 1
      ? dy
      : reshape(
          g,
          dy,
          x.shape.map((d, i) => (axes.includes(i) ? 1 : d)),
        );
  return [() => expand(g, kept, x.shape), null];
};
