import type { GraphBuilder, Value } from '../graph-builder.js';
import { MASKED } from '../../../bank/logit-bias.js';
import { add } from '../ops/add.js';
import { cast } from '../ops/cast.js';
import { equal } from '../ops/equal.js';
import { gemm } from '../ops/gemm.js';
import { mul } from '../ops/mul.js';
import { reduceSum } from '../ops/reduce-sum.js';

/** The operands of {@link bankCritic}. */
export interface BankCriticOperands {
  /** Anchors, B×d. */
  q: Value;
  /** Their positives, B×d. */
  kpos: Value;
  /** The bank's K keys, K×d. */
  bank: Value;
  /** Logit scale 1/τ, a scalar. */
  scale: Value;
  /** Each row's positive correction (logQ), B×1. */
  positiveBias: Value;
  /** Each bank slot's correction, 1×K: logQ, or a large negative value for an empty slot. */
  bankBias: Value;
}

/** The critic's scores in the queue layout, in two blocks. */
export interface BankCritic {
  /** scale·<q_i, kpos_i> + positiveBias_i, B×1. */
  positive: Value;
  /** scale·<q_i, bank_j> + bankBias_j, B×K. */
  negatives: Value;
}

/**
 * The critic T(q, k) = scale·<q, k> + logQ correction of every row against its positive and every
 * bank slot, without masks: what the score objectives train and what every bound is computed on.
 */
export function bankCritic(g: GraphBuilder, o: BankCriticOperands): BankCritic {
  // The scale multiplies the B×d anchors, not the B×K scores: one pass over B×K fewer, each way.
  const scaled = mul(g, o.q, o.scale);
  const positive = add(g, reduceSum(g, mul(g, scaled, o.kpos), [1], true), o.positiveBias);
  return { positive, negatives: bankScores(g, scaled, o.bank, o.bankBias) };
}

/** scale·<q_i, bank_j> + bankBias_j (n×K) from the anchors already scaled: the critic's scores against the bank, unmasked. */
export function bankScores(g: GraphBuilder, scaledQ: Value, bank: Value, bankBias: Value): Value {
  // The bias rides in the Gemm's C operand, broadcast over the rows: no separate pass over n×K.
  return gemm(g, scaledQ, bank, bankBias, { transB: true });
}

/** `logits` (n×K) with MASKED added where a slot's id (`bankIds`, int32 1×K) is the row's positive id (`hitIds`, int32 n×1): accidental hits removed. */
export function maskAccidentalHits(g: GraphBuilder, logits: Value, hitIds: Value, bankIds: Value): Value {
  // A product rather than Where: ONNX Runtime's CPU Where takes about five times as long as a
  // multiply over the same n×K logits, each way.
  return add(g, logits, mul(g, cast(g, equal(g, hitIds, bankIds), 'float32'), g.scalar(MASKED)));
}
