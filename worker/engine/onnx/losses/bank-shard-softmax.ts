import { GraphBuilder, type Value } from '../graph-builder.js';
import { exp } from '../ops/exp.js';
import { matMul } from '../ops/matmul.js';
import { bankScores, maskAccidentalHits } from './bank-critic.js';
import { mul } from '../ops/mul.js';
import { reduceMax } from '../ops/reduce-max.js';
import { reduceSum } from '../ops/reduce-sum.js';
import { softplus } from '../ops/softplus.js';
import { sub } from '../ops/sub.js';
import { encodeModel } from '../onnx-model.js';

/** The shapes a bank shard's graphs are built for: n gathered query rows against k keys of width d. */
export interface BankShardShape {
  rows: number;
  keys: number;
  dim: number;
  /** Mask the slots that hold a row's positive id (accidental hits). */
  maskHits: boolean;
  /** Also output the critic's statistics over the shard (a logged step's bounds). */
  logged?: boolean;
}

/** A built shard graph: its bytes and its outputs' names. */
export interface BankShardGraph {
  model: Uint8Array;
  name: string;
  outputs: string[];
}

/**
 * The logits of the gathered rows against one shard of the bank, as the replicated head has them
 * (models/objective-head.ts): scale·<q, key> + the slot's bias (logQ, or MASKED for an empty slot),
 * MASKED added where a slot holds the row's positive id. Inputs `q` (n×d), `scale`, `bank` (k×d),
 * `bank_bias` (1×k), and with masks `hit_ids` (int32 n×1) and `bank_ids` (int32 1×k).
 */
function shardLogits(g: GraphBuilder, s: BankShardShape): { logits: Value; critic: Value; bank: Value } {
  const bank = g.input('bank', [s.keys, s.dim]);
  const critic = bankScores(g, mul(g, g.input('q', [s.rows, s.dim]), g.input('scale', [])), bank, g.input('bank_bias', [1, s.keys]));
  const logits = s.maskHits ? maskAccidentalHits(g, critic, g.input('hit_ids', [s.rows, 1], 'int32'), g.input('bank_ids', [1, s.keys], 'int32')) : critic;
  return { logits, critic, bank };
}

const shapeName = (s: BankShardShape) => `n${s.rows}-k${s.keys}-d${s.dim}${s.maskHits ? '-hits' : ''}${s.logged ? '-logged' : ''}`;

/** Each row's largest value of `x` and Σ exp(x − max) over the row. */
function rowExpStats(g: GraphBuilder, x: Value): [Value, Value] {
  const max = reduceMax(g, x, [1]);
  return [max, reduceSum(g, exp(g, sub(g, x, max)), [1], true)];
}

/**
 * Partial FC's first pass over a shard: each row's largest logit and Σ exp(logit − max) over the
 * shard's slots (outputs `row_max`, `row_sum_exp`, n×1), which the members combine into every row's
 * log-sum-exp over the whole bank (common/log-sum-exp-merge.ts). Logged, also the critic's (the
 * logits without accidental-hit masks, as every bound is computed, docs/architecture.md §1):
 * `critic_max`, `critic_sum_exp` and `critic_softplus` (Σ softplus), which merge the same way and
 * by a sum into the whole bank's row statistics.
 */
export function bankShardStatsGraph(s: BankShardShape): BankShardGraph {
  const g = new GraphBuilder(`bank-shard-stats-${shapeName(s)}`);
  const { logits, critic } = shardLogits(g, s);
  const [max, sumExp] = rowExpStats(g, logits);
  const named: [string, Value][] = [
    ['row_max', max],
    ['row_sum_exp', sumExp],
  ];
  if (s.logged) {
    const [criticMax, criticSumExp] = rowExpStats(g, critic);
    named.push(['critic_max', criticMax], ['critic_sum_exp', criticSumExp], ['critic_softplus', reduceSum(g, softplus(g, critic), [1], true)]);
  }
  const outputs = named.map(([name, value]) => g.namedOutput(name, value).name);
  return { model: encodeModel(g), name: g.name, outputs };
}

/**
 * The second pass, once every row's log-sum-exp over the whole bank is known (input `row_lse`,
 * n×1): the shard's part of Σ_j p_ij·key_j (output `weighted_keys`, n×d), p the softmax over the
 * whole bank. Summed over the shards it is what the gradient of the InfoNCE loss with respect to
 * each query needs from the bank (dL/dq_i = scale/B·(Σ_j p_ij key_j − kpos_i) without in-batch terms).
 */
export function bankShardGradGraph(s: BankShardShape): BankShardGraph {
  const g = new GraphBuilder(`bank-shard-grad-${shapeName(s)}`);
  const { logits, bank } = shardLogits(g, s);
  const p = exp(g, sub(g, logits, g.input('row_lse', [s.rows, 1])));
  const outputs = [g.namedOutput('weighted_keys', matMul(g, p, bank)).name];
  return { model: encodeModel(g), name: g.name, outputs };
}
