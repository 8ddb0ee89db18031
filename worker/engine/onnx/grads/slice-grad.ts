import { pad } from '../ops/pad.js';
import type { GradientRule } from './gradient-rule.js';

/** d slice(x) = dy put back where the slice was taken, zeros elsewhere. */
export const sliceGrad: GradientRule = (g, node, dy) => {
  const [x, starts, ends, axes] = node.inputs;
  const [start] = g.int64Constant(starts!);
  const [end] = g.int64Constant(ends!);
  const [axis] = g.int64Constant(axes!);
  const before = x!.shape.map((_, i) => (i === axis ? start! : 0));
  const after = x!.shape.map((d, i) => (i === axis ? d - end! : 0));
  return [() => pad(g, dy, before, after), null, null, null];
};
