import { transpose } from '../ops/transpose.js';
import type { GradientRule } from './gradient-rule.js';

/** d transpose(x, perm) = transpose(dy, perm⁻¹). */
export const transposeGrad: GradientRule = (g, node, dy) => {
  const attribute = node.attributes.perm;
  const perm = attribute?.kind === 'ints' ? attribute.value : node.inputs[0]!.shape.map((_, i, s) => s.length - 1 - i);
  const inverse = new Array<number>(perm.length);
  for (const [i, p] of perm.entries()) inverse[p] = i;
  return [() => transpose(g, dy, inverse)];
};
