import type { CriticRows } from './estimators.js';
import { mergeLogSumExp, type RowExpStats } from './log-sum-exp-merge.js';

/** A member's own rows in Partial FC's InfoNCE: anchors, their positives and the in-batch bias. */
export interface OwnRows {
  /** Anchors q, B×d (unit rows). */
  q: Float32Array;
  /** Their positives (the momentum keys), B×d. */
  kpos: Float32Array;
  /** B×B bias of row i against row j's positive: the diagonal is the positive's logQ correction, MASKED removes a candidate (worker/bank/logit-bias.ts). */
  batchBias: Float32Array;
  /** Logit scale 1/τ. */
  scale: number;
  dim: number;
}

/** Each own row's logits against the batch's positives: scale·<q_i, kpos_j> + batchBias_ij, B×B, in float64. */
function batchLogits(o: OwnRows): Float64Array {
  const b = o.q.length / o.dim;
  const out = new Float64Array(b * b);
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < b; j++) {
      let dot = 0;
      for (let c = 0; c < o.dim; c++) dot += o.q[i * o.dim + c]! * o.kpos[j * o.dim + c]!;
      out[i * b + j] = o.scale * dot + o.batchBias[i * b + j]!;
    }
  }
  return out;
}

/** The own rows' in-batch block, computed once for the softmax statistics, the gradients and the bounds. */
export interface OwnBlock {
  rows: OwnRows;
  /** scale·<q_i, kpos_j> + batchBias_ij, B×B, float64. */
  logits: Float64Array;
  /** Each row's max and Σ e^(s − max) over its in-batch candidates (its positive at least): its part of the merged log-sum-exp. */
  stats: RowExpStats;
  /** Each row's critic score against its positive (the block's diagonal, logQ included). */
  positive: Float32Array;
}

/** The own rows' in-batch block of the logits and its statistics. */
export function ownBlock(o: OwnRows): OwnBlock {
  const b = o.q.length / o.dim;
  const logits = batchLogits(o);
  const max = new Float32Array(b);
  const sumExp = new Float32Array(b);
  const positive = new Float32Array(b);
  for (let i = 0; i < b; i++) {
    const row = logits.subarray(i * b, (i + 1) * b);
    // A loop, not Math.max(...row): a spread of a large batch's row would overflow the stack.
    let m = Number.NEGATIVE_INFINITY;
    for (const l of row) m = Math.max(m, l);
    m = Math.fround(m);
    max[i] = m;
    let sum = 0;
    for (const l of row) sum += Math.exp(l - m);
    sumExp[i] = sum;
    positive[i] = row[i]!;
  }
  return { rows: o, logits, stats: { max, sumExp }, positive };
}

/** What the InfoNCE head hands back to the towers. */
export interface InfonceHeadGradients {
  /** Mean over the own rows of log Σ e^s − s_positive. */
  loss: number;
  /** dL/dq, B×d. */
  q: Float32Array;
  /** dL/dscale. */
  scale: number;
}

/**
 * The InfoNCE loss of the own rows and its gradients, from every row's log-sum-exp over all its
 * candidates (`lse`: the merged statistics of its in-batch block and of every bank shard) and the
 * bank's Σ_j p_ij·key_j summed over the shards (`bankWeighted`, B×d). With the residual
 * r_i = Σ_j p_ij·k_j − kpos_i over all candidates: dL/dq_i = scale/B·r_i and dL/dscale = 1/B·Σ_i <q_i, r_i>,
 * the replicated head's gradient (common/infonce-bank-loss.ts) with the bank's part computed where the bank is.
 */
export function infonceHeadGradients(block: OwnBlock, lse: Float32Array, bankWeighted: Float32Array): InfonceHeadGradients {
  const { rows: o, logits } = block;
  const { dim: d } = o;
  const b = o.q.length / d;
  const q = new Float32Array(b * d);
  let loss = 0;
  let scale = 0;
  const resid = new Float64Array(d);
  for (let i = 0; i < b; i++) {
    loss += (lse[i]! - logits[i * b + i]!) / b;
    for (let c = 0; c < d; c++) resid[c] = bankWeighted[i * d + c]! - o.kpos[i * d + c]!;
    for (let j = 0; j < b; j++) {
      const p = Math.exp(logits[i * b + j]! - lse[i]!);
      if (p === 0) continue;
      for (let c = 0; c < d; c++) resid[c]! += p * o.kpos[j * d + c]!;
    }
    for (let c = 0; c < d; c++) {
      q[i * d + c] = (o.scale / b) * resid[c]!;
      scale += (o.q[i * d + c]! * resid[c]!) / b;
    }
  }
  return { loss, q, scale };
}

/** One bank shard's critic statistics of the own rows (the shard graph's `critic_*` outputs). */
export interface ShardCriticStats extends RowExpStats {
  /** Σ softplus(s) over the shard's slots. */
  softplus: Float32Array;
}

/**
 * The critic's row statistics over the whole bank (what every bound is computed from) from each
 * shard's: log-sum-exps merged, maxima and softplus sums combined; `positive` is each own row's
 * critic score against its positive, `filled` the keys the whole bank holds.
 */
export function criticRowsOfShards(positive: Float32Array, shards: readonly ShardCriticStats[], filled: number): CriticRows {
  const b = positive.length;
  const negMax = new Float32Array(b).fill(Number.NEGATIVE_INFINITY);
  const negSoftplus = new Float32Array(b);
  for (const s of shards) {
    for (let i = 0; i < b; i++) {
      negMax[i] = Math.max(negMax[i]!, s.max[i]!);
      negSoftplus[i]! += s.softplus[i]!;
    }
  }
  return { rows: b, negativesPerRow: filled, pos: positive, negLogSumExp: mergeLogSumExp(shards), negMax, negSoftplus };
}
