import * as tf from '@tensorflow/tfjs-core';
import { indexInSorted } from '../../common/partition-point.js';
import { TimeSlicer } from '../../common/time-slicer.js';

/** Held-out (query, site) click pairs; the three arrays are parallel. */
export interface RetrievalPairs {
  /** Row of the query in the query embeddings. */
  readonly query: Int32Array;
  /** The clicked site (its id). */
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

/** Sites with their embeddings and, optionally, a score offset each (e.g. log p̂(s) scaled by the temperature). */
export interface ScoredSites {
  /** Site ids, ascending and distinct. */
  readonly ids: Int32Array;
  /** Their embeddings, ids.length·dim row-major. */
  readonly emb: Float32Array;
  /** Score offset of each, length ids.length. */
  readonly bias?: Float32Array;
}

/** Inputs of {@link countRivals}. */
export interface RivalCountOptions {
  /** Query embeddings, Q·dim row-major. */
  readonly queryEmb: Float32Array;
  /** Embedding width. */
  readonly dim: number;
  /** Held-out pairs to rank; `site` holds site ids. */
  readonly pairs: RetrievalPairs;
  /** The sites this member ranks every pair against: all of them, or its share of them. */
  readonly candidates: ScoredSites;
  /** Every site some pair clicked, each pair's score threshold. */
  readonly positives: ScoredSites;
  /** Upper bound on the bytes of one chunk's pairs×candidates score matrix (default 16 MiB). */
  readonly chunkBytes?: number;
}

// A chunk is one stretch of work between yields to the event loop: 16 MiB of scores is a few tens of
// ms of matMul, far inside a cluster member's heartbeat timeout even on a loaded machine.
const DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024;

/**
 * For every pair, the candidate sites other than its clicked site that score at least as high as the
 * clicked site: score dot(query, site) + bias. A pair's rank among all sites is 1 + the rivals summed
 * over any split of the sites into candidate shares, so members can each rank against a share and add
 * their counts. The clicked site is left out by id, not by score, so it counts exactly once whichever
 * share holds it; ties with other sites count against the model (an embedding that scores everything
 * alike ranks every pair last). Both the threshold and the candidates' scores come from the same
 * matMul on the backend, so equal embeddings give equal scores. Pairs are scored in chunks (one row of
 * scores per pair, which measured faster on wasm than scoring each distinct query once and gathering
 * rows), yielding to the event loop between them: a cluster member's heartbeat must keep flowing.
 */
export async function countRivals(opts: RivalCountOptions): Promise<Float64Array> {
  const { queryEmb, dim, pairs, candidates, positives } = opts;
  const q = rowsOf(queryEmb, dim, 'queryEmb');
  const c = scoredRows(candidates, dim, 'candidates');
  scoredRows(positives, dim, 'positives');
  checkPairs(pairs, q);
  const p = pairs.query.length;
  const positiveRow = indicesIn(positives.ids, pairs.site, true);
  const candidateColumn = indicesIn(candidates.ids, pairs.site, false);
  const rivals = new Float64Array(p);
  if (c === 0) return rivals;
  const chunkPairs = Math.min(p, Math.max(1, Math.floor((opts.chunkBytes ?? DEFAULT_CHUNK_BYTES) / (4 * c))));

  // Transposed once, so scoring is a plain matMul (transposeB is ~10x slower on wasm).
  const candidateT = tf.tidy(() => tf.transpose(tf.tensor2d(candidates.emb, [c, dim])));
  const candidateBias = candidates.bias === undefined ? undefined : tf.tensor1d(candidates.bias);
  const positiveEmb = tf.tensor2d(positives.emb, [positives.ids.length, dim]);
  const positiveBias = positives.bias === undefined ? undefined : tf.tensor1d(positives.bias);
  try {
    const queryRows = new Float32Array(chunkPairs * dim);
    const threshold = new Float32Array(chunkPairs);
    const slicer = new TimeSlicer();
    for (let start = 0; start < p; start += chunkPairs) {
      await slicer.maybeYield();
      const count = Math.min(chunkPairs, p - start);
      // The chunk's distinct clicked sites, as columns of a small score matrix: its diagonal-like
      // entries are the thresholds, computed by the same kernel as the candidates' scores.
      const columnOf = new Map<number, number>();
      const thresholdAt = new Int32Array(count);
      const selfAt = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const pair = start + i;
        const query = pairs.query[pair]!;
        queryRows.set(queryEmb.subarray(query * dim, (query + 1) * dim), i * dim);
        const row = positiveRow[pair]!;
        if (!columnOf.has(row)) columnOf.set(row, columnOf.size);
        thresholdAt[i] = columnOf.get(row)!;
        selfAt[i] = i * c + Math.max(candidateColumn[pair]!, 0);
      }
      const u = columnOf.size;
      for (let i = 0; i < count; i++) thresholdAt[i] = i * u + thresholdAt[i]!;
      const [belowT, thresholdT, selfT] = tf.tidy(() => {
        const qt = tf.tensor2d(queryRows.subarray(0, count * dim), [count, dim]);
        const rows = tf.tensor1d(Int32Array.from(columnOf.keys()), 'int32');
        const own = tf.matMul(qt, tf.transpose(tf.gather(positiveEmb, rows)));
        let limit = tf.gather(tf.reshape(own, [-1]), tf.tensor1d(thresholdAt, 'int32'));
        if (positiveBias !== undefined) limit = tf.add(limit, tf.gather(positiveBias, tf.tensor1d(positiveRow.subarray(start, start + count), 'int32')));
        const raw = tf.matMul(qt, candidateT);
        const scores = candidateBias === undefined ? raw : tf.add(raw, candidateBias);
        const self = tf.gather(tf.reshape(scores, [-1]), tf.tensor1d(selfAt, 'int32'));
        // step(limit − score) is 1 exactly where score < limit (the sign of a float difference is
        // exact); a broadcast greaterEqual and a row gather both ran ~10x slower than this on wasm.
        return [tf.sum(tf.step(tf.sub(tf.expandDims(limit, 1), scores)), 1), limit, self];
      });
      const below = belowT.dataSync();
      threshold.set(thresholdT.dataSync());
      const self = selfT.dataSync();
      tf.dispose([belowT, thresholdT, selfT]);
      for (let i = 0; i < count; i++) {
        const pair = start + i;
        // NaN scores compare false everywhere: refuse them rather than rank silently.
        if (Number.isNaN(threshold[i]!)) throw new RangeError(`retrieval: non-finite score for pair ${pair}`);
        const selfCounted = candidateColumn[pair]! >= 0 && self[i]! >= threshold[i]! ? 1 : 0;
        rivals[pair] = c - below[i]! - selfCounted;
      }
    }
  } finally {
    tf.dispose([candidateT, positiveEmb]);
    candidateBias?.dispose();
    positiveBias?.dispose();
  }
  return rivals;
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
  return metricsOfRanks(ranks, pairs.weight);
}

/** Click-weighted Recall@1, Recall@10 and MRR from 1-based ranks (an estimated rank need not be an integer). */
export function metricsOfRanks(ranks: Float64Array, weight: Float64Array): RetrievalMetrics {
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

/** Rows of a site set; ids ascending and distinct (so a pair's site is found by bisection), bias one per site. */
function scoredRows(sites: ScoredSites, dim: number, name: string): number {
  const n = rowsOf(sites.emb, dim, `${name} emb`);
  if (n !== sites.ids.length) throw new RangeError(`retrieval: ${name} have ${sites.ids.length} ids and ${n} embeddings`);
  for (let i = 1; i < n; i++) {
    if (!(sites.ids[i]! > sites.ids[i - 1]!)) throw new RangeError(`retrieval: ${name} ids are not ascending at ${i}`);
  }
  if (sites.bias !== undefined) {
    if (sites.bias.length !== n) throw new RangeError(`retrieval: ${name} have ${sites.bias.length} biases for ${n} sites`);
    const bad = sites.bias.findIndex((b) => !Number.isFinite(b));
    if (bad >= 0) throw new RangeError(`retrieval: ${name} bias[${bad}] is ${sites.bias[bad]}`);
  }
  return n;
}

/** Where each of `wanted` stands in the ascending `ids`: −1 when absent, which is an error when `required`. */
function indicesIn(ids: Int32Array, wanted: Int32Array, required: boolean): Int32Array {
  return Int32Array.from(wanted, (id, i) => {
    const at = indexInSorted(ids, id);
    if (at < 0 && required) throw new RangeError(`retrieval: pair ${i} site ${id} is not among the positives`);
    return at;
  });
}

/** Pairs must be parallel, index existing rows and carry a positive total weight. */
function checkPairs(pairs: RetrievalPairs, queries: number, sites = Number.POSITIVE_INFINITY): void {
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
