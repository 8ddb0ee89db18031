/**
 * Mutual-information lower bounds on a critic's score matrix (docs/architecture.md §1), computed in plain JS
 * with float64 accumulation. Rows are anchors, columns are candidates; the layout says where each
 * row's positive sits. This module has no tfjs dependency so that the coordinator can use it too;
 * the differentiable losses are in `estimators-losses.ts`.
 */

/**
 * Where each row's positive sits: `'diagonal'` is the square in-batch form (row i's positive is
 * column i, the other B−1 columns are its negatives); `'first'` is the MoCo queue form B×(K+1)
 * (column 0 is the positive, columns 1..K the negatives).
 */
export const SCORE_LAYOUTS = ['diagonal', 'first'] as const;
/** One of {@link SCORE_LAYOUTS}. */
export type ScoreLayout = (typeof SCORE_LAYOUTS)[number];

/** The bounds every run reports side by side, whatever objective it trains. */
export const BOUND_NAMES = ['infonce', 'nwj', 'dv', 'jsd'] as const;
/** One of {@link BOUND_NAMES}. */
export type BoundName = (typeof BOUND_NAMES)[number];

/** The training objectives; `mine` is DV trained with a moving-average denominator. */
export const ESTIMATORS = ['infonce', 'nwj', 'dv', 'mine', 'jsd'] as const;
/** One of {@link ESTIMATORS}. */
export type Estimator = (typeof ESTIMATORS)[number];

/** The bound whose value each objective raises (MINE's value is the DV bound). */
export const ESTIMATOR_BOUND: { readonly [E in Estimator]: BoundName } = {
  infonce: 'infonce',
  nwj: 'nwj',
  dv: 'dv',
  mine: 'dv',
  jsd: 'jsd',
};

/** A row-major score matrix: `scores[i * cols + j]` is the critic's score of anchor i with candidate j. */
export interface ScoreMatrix {
  readonly scores: Float32Array | Float64Array;
  readonly rows: number;
  readonly cols: number;
  readonly layout: ScoreLayout;
}

/** The value of every bound on one score matrix, in nats. */
export type BoundValues = Record<BoundName, number>;

/**
 * Throws unless rows×cols is a valid shape for the layout: at least one row, at least one negative
 * per row (cols ≥ 2), and square for `'diagonal'`.
 */
export function assertScoreShape(rows: number, cols: number, layout: ScoreLayout): void {
  if (!SCORE_LAYOUTS.includes(layout)) throw new Error(`unknown score layout "${String(layout)}"`);
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 2) {
    throw new Error(`score matrix ${rows}x${cols}: need at least 1 row and 2 columns (a positive and a negative)`);
  }
  if (layout === 'diagonal' && rows !== cols) {
    throw new Error(`score matrix ${rows}x${cols}: the 'diagonal' layout needs a square matrix`);
  }
}

/** log(1 + e^x) without overflow or loss of precision for large |x|. */
function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

// Rows whose largest negative lies in this range take the fast softplus path: e^max neither
// overflows nor underflows, and each factor 1 + e^s stays below e^FAST_MAX.
const FAST_MIN = -700;
const FAST_MAX = 100;
// The running product is folded into its log before it can overflow: 1e250 · e^100 < 1.8e308.
const PRODUCT_LIMIT = 1e250;

/**
 * Per-row statistics of a critic's score matrix from which every bound and the accuracy follow: an
 * engine can reduce its scores to these where they are (a graph's output of B×4 values instead of
 * B×(K+1) scores), and {@link boundValues} reduces a matrix in JS to the same.
 */
export interface CriticRows {
  readonly rows: number;
  /** Negatives in each row (cols − 1). */
  readonly negativesPerRow: number;
  /** Each row's positive score. */
  readonly pos: ArrayLike<number>;
  /** log Σ e^s over each row's negatives (−∞ when every negative is −∞). */
  readonly negLogSumExp: ArrayLike<number>;
  /** Each row's largest negative. */
  readonly negMax: ArrayLike<number>;
  /** Σ softplus(s) over each row's negatives. */
  readonly negSoftplus: ArrayLike<number>;
}

/**
 * The {@link CriticRows} of one score matrix: two cache-friendly passes per row, float64 sums and no
 * allocation beyond the four row arrays. Negatives are every non-positive entry; an entry of −∞ (a
 * masked negative) adds nothing to the sums, and NaN anywhere makes the affected values NaN.
 */
export function criticRows(m: ScoreMatrix): CriticRows {
  const { scores: s, rows, cols, layout } = m;
  assertScoreShape(rows, cols, layout);
  if (s.length !== rows * cols) throw new Error(`score matrix ${rows}x${cols} given ${s.length} scores`);
  const pos = new Float64Array(rows);
  const negLogSumExp = new Float64Array(rows);
  const negMax = new Float64Array(rows);
  const negSoftplus = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    const start = i * cols;
    const end = start + cols;
    const p = start + (layout === 'diagonal' ? i : 0);
    let rowMax = -Infinity;
    for (let k = start; k < end; k++) if (k !== p && s[k]! > rowMax) rowMax = s[k]!;
    // With every negative at −∞ there is nothing to shift by; e^(−∞ − 0) is still 0.
    const shift = rowMax === -Infinity ? 0 : rowMax;
    let rowExp = 0;
    let rowSoftplus = 0;
    if (shift >= FAST_MIN && shift <= FAST_MAX) {
      // Σ log(1 + e^s) as the log of a product, reusing e^(s − shift): one exp per entry, no log.
      const scale = Math.exp(shift);
      let product = 1;
      for (let k = start; k < end; k++) {
        if (k === p) continue;
        const e = Math.exp(s[k]! - shift);
        rowExp += e;
        product *= 1 + e * scale;
        if (product > PRODUCT_LIMIT) {
          rowSoftplus += Math.log(product);
          product = 1;
        }
      }
      rowSoftplus += Math.log(product);
    } else {
      for (let k = start; k < end; k++) {
        if (k === p) continue;
        rowExp += Math.exp(s[k]! - shift);
        rowSoftplus += softplus(s[k]!);
      }
    }
    pos[i] = s[p]!;
    negLogSumExp[i] = shift + Math.log(rowExp);
    negMax[i] = rowMax;
    negSoftplus[i] = rowSoftplus;
  }
  return { rows, negativesPerRow: cols - 1, pos, negLogSumExp, negMax, negSoftplus };
}

/**
 * InfoNCE, NWJ, DV and JSD of a critic (docs/architecture.md §1) from its row statistics:
 * InfoNCE = log(cols) + mean_i(s_i,pos − logsumexp_j s_ij), DV = mean(pos) − log mean_neg(e^s),
 * NWJ = mean(pos) − e^{−1}·mean_neg(e^s), JSD = −mean(softplus(−pos)) − mean_neg(softplus(s)).
 */
export function boundsOfRows(r: CriticRows): BoundValues {
  const { rows } = r;
  let posSum = 0;
  let infonceSum = 0;
  let posSoftplusSum = 0;
  let negSoftplusSum = 0;
  // All negatives' Σ e^s as negExpSum · e^negMax, merged row by row so that it cannot overflow.
  let negMax = -Infinity;
  let negExpSum = 0;
  for (let i = 0; i < rows; i++) {
    const pos = r.pos[i]!;
    const lse = r.negLogSumExp[i]!;
    posSum += pos;
    posSoftplusSum += softplus(-pos);
    negSoftplusSum += r.negSoftplus[i]!;
    // s_pos − log(e^s_pos + e^lse) = −softplus(lse − s_pos); a row without negatives adds nothing.
    if (lse !== -Infinity) infonceSum -= softplus(lse - pos);
    else if (Number.isNaN(pos)) infonceSum = NaN;
    if (lse === -Infinity) continue;
    if (lse > negMax) {
      negExpSum = negExpSum * Math.exp(negMax - lse) + 1;
      negMax = lse;
    } else {
      negExpSum += Math.exp(lse - negMax);
    }
  }
  const negCount = rows * r.negativesPerRow;
  const meanPos = posSum / rows;
  const logMeanExpNeg = negMax + Math.log(negExpSum) - Math.log(negCount);
  return {
    infonce: Math.log(r.negativesPerRow + 1) + infonceSum / rows,
    nwj: meanPos - Math.exp(logMeanExpNeg - 1),
    dv: meanPos - logMeanExpNeg,
    jsd: -posSoftplusSum / rows - negSoftplusSum / negCount,
  };
}

/**
 * The rate at which the critic picks the true pair: the fraction of rows whose positive scores
 * strictly above every negative ((K+1)-way accuracy in the queue layout).
 */
export function accuracyOfRows(r: CriticRows): number {
  let hits = 0;
  for (let i = 0; i < r.rows; i++) if (r.pos[i]! > r.negMax[i]!) hits++;
  return r.rows === 0 ? 0 : hits / r.rows;
}

/** InfoNCE, NWJ, DV and JSD of one score matrix: {@link boundsOfRows} of its {@link criticRows}. */
export function boundValues(m: ScoreMatrix): BoundValues {
  return boundsOfRows(criticRows(m));
}

/** The most InfoNCE can ever report with n candidates per row: log n. */
export function infonceCeiling(n: number): number {
  return Math.log(n);
}

/**
 * The most InfoNCE can report with n candidates per row when scores are cosine similarities over
 * temperature tau (unit-norm embeddings, scores in [−1/tau, 1/tau]): reached when every positive
 * scores 1/tau and every negative −1/tau, it is log n − log(1 + (n−1)e^{−2/tau}).
 */
export function infonceTemperatureCap(n: number, tau: number): number {
  return Math.log(n) - Math.log1p((n - 1) * Math.exp(-2 / tau));
}
