import type { GraphBuilder, Value } from '../graph-builder.js';
import { add } from '../ops/add.js';
import { concat } from '../ops/concat.js';
import { gemm } from '../ops/gemm.js';
import { logSumExp } from '../ops/log-sum-exp.js';
import { mul } from '../ops/mul.js';
import { reduceSum } from '../ops/reduce-sum.js';
import { sub } from '../ops/sub.js';

/** The operands of {@link infonceBankLoss}. */
export interface InfonceBankOperands {
  /** Anchors, B×d (unit rows). */
  q: Value;
  /** Their positives, B×d. */
  kpos: Value;
  /** Logit scale 1/τ, a scalar. */
  scale: Value;
  /** Bias of the in-batch block, B×B: row i's bias for row j's positive (the diagonal: each positive's own). */
  batchBias: Value;
  /** The bank's logits B×K, bias and masks included (losses/bank-critic.ts), or null for an in-batch term. */
  bankLogits: Value | null;
}

/**
 * Mean InfoNCE cross-entropy of B anchors against [their B positives; the K bank keys], the loss of
 * common/infonce-bank-loss.ts as an ONNX graph: logits S = [scale·q·kposᵀ + batchBias, bankLogits],
 * row i's positive in column i, loss = mean_i(logsumexp_j S_ij − S_ii). The two blocks' log-sum-exps
 * are merged rather than the blocks concatenated, so a bank of a million keys costs no B×(B+K) copy;
 * taken in log space, a positive whose probability underflows still gives a finite loss.
 */
export function infonceBankLoss(g: GraphBuilder, o: InfonceBankOperands): Value {
  const b = o.q.shape[0]!;
  const batchLogits = add(g, mul(g, gemm(g, o.q, o.kpos, null, { transB: true }), o.scale), o.batchBias);
  const inBatch = logSumExp(g, batchLogits, 1);
  const lse = o.bankLogits === null ? inBatch : logSumExp(g, concat(g, [inBatch, logSumExp(g, o.bankLogits, 1)], 1), 1);
  // S_ii = scale·<q_i, kpos_i> + batchBias_ii: the diagonal without a B×B product's gather.
  const eye = g.constant(
    Array.from({ length: b * b }, (_, i) => (i % (b + 1) === 0 ? 1 : 0)),
    [b, b],
  );
  const positiveBias = reduceSum(g, mul(g, o.batchBias, eye), [1], true);
  const positive = add(g, mul(g, reduceSum(g, mul(g, o.q, o.kpos), [1], true), o.scale), positiveBias);
  return mul(g, reduceSum(g, sub(g, lse, positive), [], false), g.scalar(1 / b));
}
