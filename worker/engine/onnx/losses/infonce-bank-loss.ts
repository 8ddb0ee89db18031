import type { GraphBuilder, Value } from '../graph-builder.js';
import { add } from '../ops/add.js';
import { concat } from '../ops/concat.js';
import { gemm } from '../ops/gemm.js';
import { logSumExp } from '../ops/log-sum-exp.js';
import { mul } from '../ops/mul.js';
import { reduceSum } from '../ops/reduce-sum.js';
import { slice } from '../ops/slice.js';
import { sub } from '../ops/sub.js';

/** The operands of {@link infonceBankLoss}. */
export interface InfonceBankOperands {
  /** Anchors, B×d (unit rows). */
  q: Value;
  /** Their positives, B×d. */
  kpos: Value;
  /** The bank's K keys, K×d; null for none (an in-batch term). */
  bank: Value | null;
  /** Logit scale 1/τ, a scalar. */
  scale: Value;
  /** Logit bias B×(B+K): logQ correction and masks (a large negative value removes a candidate). */
  bias: Value;
}

/**
 * Mean InfoNCE cross-entropy of B anchors against [their B positives; the K bank keys], the loss of
 * common/infonce-bank-loss.ts as an ONNX graph: logits S = scale·q·[kpos; bank]ᵀ + bias, row i's
 * positive in column i, loss = mean_i(logsumexp_j S_ij − S_ii). Taken in log space, so a positive
 * whose probability underflows still gives a finite loss.
 */
export function infonceBankLoss(g: GraphBuilder, o: InfonceBankOperands): Value {
  const b = o.q.shape[0]!;
  const keys = o.bank === null ? o.kpos : concat(g, [o.kpos, o.bank], 0);
  const logits = add(g, mul(g, gemm(g, o.q, keys, null, { transB: true }), o.scale), o.bias);
  // S_ii = scale·<q_i, kpos_i> + bias_ii: the diagonal without a B×(B+K) mask.
  const eye = g.constant(
    Array.from({ length: b * b }, (_, i) => (i % (b + 1) === 0 ? 1 : 0)),
    [b, b],
  );
  const positiveBias = reduceSum(g, mul(g, slice(g, o.bias, 1, 0, b), eye), [1], true);
  const positive = add(g, mul(g, reduceSum(g, mul(g, o.q, o.kpos), [1], true), o.scale), positiveBias);
  return mul(g, reduceSum(g, sub(g, logSumExp(g, logits, 1), positive), [], false), g.scalar(1 / b));
}
