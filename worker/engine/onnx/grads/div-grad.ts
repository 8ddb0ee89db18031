import { div } from '../ops/div.js';
import { mul } from '../ops/mul.js';
import { neg } from '../ops/neg.js';
import { type GradientRule, shared } from './gradient-rule.js';
import { unbroadcast } from './unbroadcast.js';

/** d(a / b) = (dy / b, −dy · y / b), with y = a / b the node's own output. */
export const divGrad: GradientRule = (g, node, dy) => {
  const [a, b] = node.inputs;
  const da = shared(() => div(g, dy, b!));
  return [() => unbroadcast(g, da(), a!.shape), () => unbroadcast(g, neg(g, mul(g, da(), node.output)), b!.shape)];
};
