import type { GraphBuilder, Value } from '../graph-builder.js';
import { add } from '../ops/add.js';
import { div } from '../ops/div.js';
import { gemm } from '../ops/gemm.js';
import { mul } from '../ops/mul.js';
import { reduceSum } from '../ops/reduce-sum.js';
import { relu } from '../ops/relu.js';
import { sqrt } from '../ops/sqrt.js';

/** A tower's dense parameters by name (`${prefix}.w${i}`, `${prefix}.b${i}`), as graph values. */
export type TowerParams = ReadonlyMap<string, Value>;

/** Rows scaled to unit L2 norm: x / sqrt(Σx² + eps), as common/linear.ts's l2Normalize. */
export function l2Normalize(g: GraphBuilder, x: Value, eps = 1e-12): Value {
  return div(g, x, sqrt(g, add(g, reduceSum(g, mul(g, x, x), [1], true), g.scalar(eps))));
}

/** The ReLU MLP of worker/model/mlp.ts (ReLU after every layer but the last), its output rows unit-normalised. */
export function mlpEmbed(g: GraphBuilder, x: Value, params: TowerParams, prefix: string, layers: number): Value {
  let h = x;
  for (let i = 0; i < layers; i++) {
    const w = params.get(`${prefix}.w${i}`);
    const b = params.get(`${prefix}.b${i}`);
    if (w === undefined || b === undefined) throw new Error(`graph ${g.name}: no parameters ${prefix}.w${i} / ${prefix}.b${i}`);
    h = gemm(g, h, w, b);
    if (i + 1 < layers) h = relu(g, h);
  }
  return l2Normalize(g, h);
}
