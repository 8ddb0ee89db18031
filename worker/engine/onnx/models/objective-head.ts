import type { Estimator } from '../../../../common/estimators.js';
import { MASKED } from '../../../bank/logit-bias.js';
import type { GraphBuilder, Value } from '../graph-builder.js';
import { bankCritic, maskAccidentalHits } from '../losses/bank-critic.js';
import { criticRowsGraph } from '../losses/critic-rows.js';
import { infonceBankLoss } from '../losses/infonce-bank-loss.js';
import { scoreLoss } from '../losses/score-losses.js';
import { add } from '../ops/add.js';
import { gemm } from '../ops/gemm.js';
import { mul } from '../ops/mul.js';
import { reduceSum } from '../ops/reduce-sum.js';

/** Which objective head a training graph ends in (a graph per head, built once). */
export interface ObjectiveHeadShape {
  objective: Estimator;
  /** Keys in the bank (K). */
  bank: number;
  /**
   * `queue`: against [positives; bank]. `in-batch`: a score objective's first step, before the bank
   * holds a key, scores the batch against itself (the positives on the diagonal).
   */
  layout: 'queue' | 'in-batch';
  /** Mask the bank slots that hold a row's positive id (InfoNCE's accidental hits), the ids compared in the graph. */
  maskHits: boolean;
  /** Also output the critic's row statistics (a logged step's bounds). */
  logged: boolean;
}

/** What {@link objectiveHead} adds to a graph. */
export interface ObjectiveHead {
  /** −bound of the objective: the step's reported loss. */
  loss: Value;
  /** What the step differentiates (MINE's gradient differs from its value's). */
  trained: Value;
  /** Further outputs by name: `critic_rows` (logged steps), `neg_log_mean` (MINE). */
  outputs: [string, Value][];
}

/** The largest value the scores' masks may add, as a graph constant. */
const maskedScalar = (g: GraphBuilder) => g.scalar(MASKED);

/**
 * The end of every training graph: the objective of anchors `q` against their positives `kpos` and
 * the bank, at logit scale `scale`. It declares the inputs it needs:
 *   queue layout: `bank` (K×d), `positive_bias` (B×1), `bank_bias` (1×K, worker/bank/logit-bias.ts);
 *     InfoNCE: `batch_bias` (B×B), with masks `hit_ids` (int32 B×1) and `bank_ids` (int32 1×K);
 *     score objectives: `neg_count` (the unmasked negatives);
 *   MINE: `mine_log_denominator` and `mine_use_batch` (1 before the moving average has a value).
 */
export function objectiveHead(g: GraphBuilder, q: Value, kpos: Value, scale: Value, s: ObjectiveHeadShape): ObjectiveHead {
  const [b, d] = q.shape as [number, number];
  const outputs: [string, Value][] = [];
  if (s.layout === 'in-batch') {
    if (s.objective === 'infonce') throw new Error(`graph ${g.name}: InfoNCE always has its positives and the bank`);
    const eye = g.constant(
      Array.from({ length: b * b }, (_, i) => (i % (b + 1) === 0 ? 1 : 0)),
      [b, b],
    );
    const scores = mul(g, gemm(g, q, kpos, null, { transB: true }), scale);
    const positive = reduceSum(g, mul(g, scores, eye), [1], true);
    const negatives = add(g, scores, mul(g, eye, maskedScalar(g)));
    return scoreHead(g, s, { positive, negatives, negCount: g.scalar(b * (b - 1)) }, outputs);
  }
  const bank = g.input('bank', [s.bank, d]);
  const critic = bankCritic(g, { q, kpos, bank, scale, positiveBias: g.input('positive_bias', [b, 1]), bankBias: g.input('bank_bias', [1, s.bank]) });
  if (s.logged) outputs.push(['critic_rows', criticRowsGraph(g, critic)]);
  if (s.objective !== 'infonce') return scoreHead(g, s, { ...critic, negCount: g.input('neg_count', []) }, outputs);
  let bankLogits = critic.negatives;
  if (s.maskHits) bankLogits = maskAccidentalHits(g, bankLogits, g.input('hit_ids', [b, 1], 'int32'), g.input('bank_ids', [1, s.bank], 'int32'));
  const loss = infonceBankLoss(g, { q, kpos, scale, batchBias: g.input('batch_bias', [b, b]), bankLogits });
  return { loss, trained: loss, outputs };
}

/** A score objective on the critic's positives and negatives; MINE's denominator and batch mean are inputs and outputs. */
function scoreHead(
  g: GraphBuilder,
  s: ObjectiveHeadShape,
  o: { positive: Value; negatives: Value; negCount: Value },
  outputs: [string, Value][],
): ObjectiveHead {
  if (s.objective === 'infonce') throw new Error(`graph ${g.name}: InfoNCE is no score objective`);
  if (s.objective !== 'mine') {
    const r = scoreLoss(g, s.objective, o);
    return { loss: r.loss, trained: r.trained, outputs };
  }
  const mine = { logDenominator: g.input('mine_log_denominator', []), useBatch: g.input('mine_use_batch', []) };
  const r = scoreLoss(g, 'mine', { ...o, mine });
  outputs.push(['neg_log_mean', r.negLogMean]);
  return { loss: r.loss, trained: r.trained, outputs };
}
