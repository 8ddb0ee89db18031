import * as tf from '@tensorflow/tfjs-core';
import { TimeSlicer } from '../../common/time-slicer.js';

/** Held-out (query, site) click pairs; the three arrays are parallel. */
export interface RetrievalPairs {
  /** Row of the query in the query embeddings. */
  readonly query: Int32Array;
  /** Row of the clicked site in the site embeddings. */
  readonly site: Int32Array;
  /** Clicks on the pair: its weight in every metric. */
  readonly weight: Float64Array;
}

/**
 * Click-weighted retrieval quality. A pair's rank is the number of sites scoring at least as high as
 * its site (the site itself included), so rank 1 means it beat every other site strictly. Ties count
 * against the model: an embedding that scores everything alike ranks every pair last, not first.
 */
export interface RetrievalMetrics {
  /** Weighted fraction of pairs whose site ranks first. */
  readonly recall_at_1: number;
  /** Weighted fraction of pairs whose site ranks in the top 10. */
  readonly recall_at_10: number;
  /** Weighted mean of 1 / rank. */
  readonly mrr: number;
}

/** Inputs of {@link retrievalMetrics}. */
export interface RetrievalMetricsOptions {
  /** Query embeddings, Q·dim row-major. */
  readonly queryEmb: Float32Array;
  /** Site embeddings, S·dim row-major. */
  readonly siteEmb: Float32Array;
  /** Embedding width. */
  readonly dim: number;
  /** Held-out pairs to rank. */
  readonly pairs: RetrievalPairs;
  /** Per-site score offset added for every query (e.g. a learned popularity bias), length S. */
  readonly siteBias?: Float32Array;
  /** Upper bound on the bytes of one chunk's pairs×sites score matrix (default 16 MiB). */
  readonly chunkBytes?: number;
}

// A chunk is one stretch of work between yields to the event loop: 16 MiB of scores is a few tens of
// ms of matMul, far inside a cluster member's heartbeat timeout even on a loaded machine.
const DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024;

/**
 * Ranks every pair's site among all S sites by score dot(query, site) + siteBias[site] and returns the
 * click-weighted Recall@1, Recall@10 and MRR (ties pessimistic, see {@link RetrievalMetrics}).
 * Pairs are scored in chunks (one row of scores per pair, which measured faster on wasm than scoring
 * each distinct query once and gathering rows); ranks are counted on the backend from the very score
 * matrix the positive's score is read from, so the site always counts itself exactly once. Yields
 * to the event loop between chunks (a cluster member's heartbeat must keep flowing).
 */
export async function retrievalMetrics(opts: RetrievalMetricsOptions): Promise<RetrievalMetrics> {
  const { queryEmb, siteEmb, dim, pairs, siteBias } = opts;
  const q = rowsOf(queryEmb, dim, 'queryEmb');
  const s = rowsOf(siteEmb, dim, 'siteEmb');
  checkPairs(pairs, q, s);
  if (siteBias !== undefined) {
    if (siteBias.length !== s) throw new RangeError(`retrieval: siteBias has ${siteBias.length} values for ${s} sites`);
    const bad = siteBias.findIndex((b) => !Number.isFinite(b));
    if (bad >= 0) throw new RangeError(`retrieval: siteBias[${bad}] is ${siteBias[bad]}`);
  }
  const p = pairs.query.length;
  const chunkPairs = Math.min(p, Math.max(1, Math.floor((opts.chunkBytes ?? DEFAULT_CHUNK_BYTES) / (4 * s))));
  const ranks = new Float64Array(p);

  // Transposed once, so scoring is a plain matMul (transposeB is ~10x slower on wasm).
  const siteT = tf.tidy(() => tf.transpose(tf.tensor2d(siteEmb, [s, dim])));
  const bias = siteBias === undefined ? undefined : tf.tensor1d(siteBias);
  try {
    const queryRows = new Float32Array(chunkPairs * dim);
    const positiveAt = new Int32Array(chunkPairs);
    const slicer = new TimeSlicer();
    for (let start = 0; start < p; start += chunkPairs) {
      await slicer.maybeYield();
      const count = Math.min(chunkPairs, p - start);
      for (let i = 0; i < count; i++) {
        const query = pairs.query[start + i]!;
        queryRows.set(queryEmb.subarray(query * dim, (query + 1) * dim), i * dim);
        positiveAt[i] = i * s + pairs.site[start + i]!;
      }
      const belowT = tf.tidy(() => {
        const raw = tf.matMul(tf.tensor2d(queryRows.subarray(0, count * dim), [count, dim]), siteT);
        const scores = bias === undefined ? raw : tf.add(raw, bias);
        const positive = tf.gather(tf.reshape(scores, [-1]), tf.tensor1d(positiveAt.subarray(0, count), 'int32'));
        // step(positive − score) is 1 exactly where score < positive (the sign of a float difference is
        // exact); a broadcast greaterEqual and a row gather both ran ~10x slower than this on wasm.
        return tf.sum(tf.step(tf.sub(tf.expandDims(positive, 1), scores)), 1);
      });
      const below = belowT.dataSync();
      belowT.dispose();
      for (let i = 0; i < count; i++) {
        const rank = s - below[i]!;
        // NaN (or no site at least as good as itself) only comes from non-finite scores: refuse it.
        if (!(rank >= 1)) throw new RangeError(`retrieval: non-finite score for pair ${start + i}`);
        ranks[start + i] = rank;
      }
    }
  } finally {
    siteT.dispose();
    bias?.dispose();
  }
  return weightedMetrics(ranks, pairs.weight);
}

/**
 * The popularity baseline: every query ranks sites by `sitePopularity` (e.g. training clicks), with
 * the same pessimistic ties as {@link retrievalMetrics}, so sites of equal popularity share the worst rank.
 */
export function popularityMetrics(sitePopularity: Float64Array, pairs: RetrievalPairs): RetrievalMetrics {
  const s = sitePopularity.length;
  for (let j = 0; j < s; j++) {
    if (Number.isNaN(sitePopularity[j]!)) throw new RangeError(`retrieval: sitePopularity[${j}] is NaN`);
  }
  checkPairs(pairs, Number.POSITIVE_INFINITY, s);
  const sorted = Float64Array.from(sitePopularity).sort();
  const ranks = new Float64Array(pairs.site.length);
  for (let i = 0; i < ranks.length; i++) {
    // Sites with popularity ≥ the clicked site's = S − (number strictly below it).
    const value = sitePopularity[pairs.site[i]!]!;
    let lo = 0;
    let hi = s;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]! < value) lo = mid + 1;
      else hi = mid;
    }
    ranks[i] = s - lo;
  }
  return weightedMetrics(ranks, pairs.weight);
}

/** Click-weighted Recall@1, Recall@10 and MRR from 1-based ranks. */
function weightedMetrics(ranks: Float64Array, weight: Float64Array): RetrievalMetrics {
  let total = 0;
  let at1 = 0;
  let at10 = 0;
  let reciprocal = 0;
  for (let i = 0; i < ranks.length; i++) {
    const w = weight[i]!;
    const rank = ranks[i]!;
    total += w;
    if (rank <= 1) at1 += w;
    if (rank <= 10) at10 += w;
    reciprocal += w / rank;
  }
  return { recall_at_1: at1 / total, recall_at_10: at10 / total, mrr: reciprocal / total };
}

/** Row count of an embedding matrix; NaN or Inf would make ranks silently wrong. */
function rowsOf(emb: Float32Array, dim: number, name: string): number {
  if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`retrieval: dim must be a positive integer, got ${dim}`);
  if (emb.length % dim !== 0) throw new RangeError(`retrieval: ${name} has ${emb.length} values, not a multiple of dim ${dim}`);
  for (let i = 0; i < emb.length; i++) {
    if (!Number.isFinite(emb[i]!)) throw new RangeError(`retrieval: ${name} row ${Math.floor(i / dim)} holds ${emb[i]}`);
  }
  return emb.length / dim;
}

/** Pairs must be parallel, index existing rows and carry a positive total weight. */
function checkPairs(pairs: RetrievalPairs, queries: number, sites: number): void {
  const { query, site, weight } = pairs;
  const p = query.length;
  if (site.length !== p || weight.length !== p) {
    throw new RangeError(`retrieval: pairs have ${p} queries, ${site.length} sites and ${weight.length} weights`);
  }
  if (p === 0) throw new RangeError('retrieval: no pairs to evaluate');
  let total = 0;
  for (let i = 0; i < p; i++) {
    if (query[i]! < 0 || query[i]! >= queries) throw new RangeError(`retrieval: pair ${i} query ${query[i]} is outside [0, ${queries})`);
    if (site[i]! < 0 || site[i]! >= sites) throw new RangeError(`retrieval: pair ${i} site ${site[i]} is outside [0, ${sites})`);
    const w = weight[i]!;
    if (!(w >= 0 && Number.isFinite(w))) throw new RangeError(`retrieval: pair ${i} weight ${w} is not a finite non-negative number`);
    total += w;
  }
  if (!(total > 0)) throw new RangeError('retrieval: pairs carry no weight');
}
