import { GraphBuilder } from '../graph-builder.js';
import { add } from '../ops/add.js';
import { concat } from '../ops/concat.js';
import { gemm } from '../ops/gemm.js';
import { identity } from '../ops/identity.js';
import { mul } from '../ops/mul.js';
import { reduceSum } from '../ops/reduce-sum.js';
import { encodeModel } from '../onnx-model.js';

/**
 * Critic scores in the queue layout, B×(1+K): column 0 scale·<q_i, kpos_i> + pos_bias_i, then
 * scale·<q_i, bank_j> + neg_bias_j (common/infonce-bank-loss.ts's queueCriticScores). Inputs q, kpos
 * (B×d), bank (K×d), pos_bias (B×1), neg_bias (1×K), scale.
 */
export function criticScoresGraph(b: number, k: number, d: number): { model: Uint8Array; output: string; name: string } {
  const g = new GraphBuilder(`critic-scores-b${b}-k${k}-d${d}`);
  const q = g.input('q', [b, d]);
  const kpos = g.input('kpos', [b, d]);
  const bank = g.input('bank', [k, d]);
  const posBias = g.input('pos_bias', [b, 1]);
  const negBias = g.input('neg_bias', [1, k]);
  const scale = g.input('scale', []);
  const pos = add(g, mul(g, reduceSum(g, mul(g, q, kpos), [1], true), scale), posBias);
  const neg = add(g, mul(g, gemm(g, q, bank, null, { transB: true }), scale), negBias);
  const scores = identity(g, concat(g, [pos, neg], 1));
  g.output(scores);
  return { model: encodeModel(g), output: scores.name, name: g.name };
}
