import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../common/random.js';
import { useTestBackend } from '../../testing/test-helpers.js';
import { segmentRange } from '../collective/ring-plan.js';
import { countRivals, metricsOfRanks, popularityMetrics, type RetrievalMetrics, type RetrievalPairs, type ScoredSites } from './retrieval-metrics.js';

interface RankingInput {
  queryEmb: Float32Array;
  siteEmb: Float32Array;
  dim: number;
  pairs: RetrievalPairs;
  siteBias?: Float32Array | undefined;
  chunkBytes?: number;
}

/** Sites [lo, hi) of `o`, or the listed ones, as countRivals takes them. */
function scored(o: RankingInput, ids: Int32Array): ScoredSites {
  const emb = new Float32Array(ids.length * o.dim);
  ids.forEach((id, i) => emb.set(o.siteEmb.subarray(id * o.dim, (id + 1) * o.dim), i * o.dim));
  return { ids, emb, ...(o.siteBias ? { bias: Float32Array.from(ids, (id) => o.siteBias![id]!) } : {}) };
}

/** Every pair ranked against all sites, split into `members` shares whose rivals are summed (as an evaluation group's members do). */
async function retrievalMetrics(o: RankingInput, members = 1): Promise<RetrievalMetrics> {
  const s = o.siteEmb.length / o.dim;
  const positives = scored(o, Int32Array.from(new Set(o.pairs.site)).sort());
  const total = new Float64Array(o.pairs.query.length);
  for (let m = 0; m < members; m++) {
    const { start, end } = segmentRange(s, members, m);
    const candidates = scored(
      o,
      Int32Array.from({ length: end - start }, (_, i) => start + i),
    );
    const rivals = await countRivals({
      queryEmb: o.queryEmb,
      dim: o.dim,
      pairs: o.pairs,
      candidates,
      positives,
      ...(o.chunkBytes ? { chunkBytes: o.chunkBytes } : {}),
    });
    rivals.forEach((r, i) => (total[i]! += r));
  }
  return metricsOfRanks(
    Float64Array.from(total, (r) => 1 + r),
    o.pairs.weight,
  );
}

/** Metrics straight from the definition: rank = #sites with score ≥ the clicked site's score. */
function bruteForce(score: (q: number, s: number) => number, sites: number, pairs: RetrievalPairs): RetrievalMetrics {
  let total = 0,
    at1 = 0,
    at10 = 0,
    rr = 0;
  for (let i = 0; i < pairs.query.length; i++) {
    const q = pairs.query[i]!;
    const positive = score(q, pairs.site[i]!);
    let rank = 0;
    for (let s = 0; s < sites; s++) if (score(q, s) >= positive) rank++;
    const w = pairs.weight[i]!;
    total += w;
    if (rank <= 1) at1 += w;
    if (rank <= 10) at10 += w;
    rr += w / rank;
  }
  return { recall_at_1: at1 / total, recall_at_10: at10 / total, mrr: rr / total };
}

function dotScore(queryEmb: Float32Array, siteEmb: Float32Array, dim: number, bias?: Float32Array) {
  return (q: number, s: number) => {
    let acc = 0;
    for (let j = 0; j < dim; j++) acc += queryEmb[q * dim + j]! * siteEmb[s * dim + j]!;
    return acc + (bias?.[s] ?? 0);
  };
}

function randomPairs(n: number, queries: number, sites: number, rng: Rng): RetrievalPairs {
  return {
    query: Int32Array.from({ length: n }, () => rng.int(queries)),
    site: Int32Array.from({ length: n }, () => rng.int(sites)),
    weight: Float64Array.from({ length: n }, () => 1 + rng.int(5)),
  };
}

function assertMetricsClose(actual: RetrievalMetrics, expected: RetrievalMetrics): void {
  for (const key of ['recall_at_1', 'recall_at_10', 'mrr'] as const) {
    assert.ok(Math.abs(actual[key] - expected[key]) < 1e-12, `${key}: ${actual[key]} != ${expected[key]}`);
  }
}

test('agrees with brute force on random embeddings, with and without bias, in chunks, without leaking', async () => {
  await useTestBackend();
  const rng = new Rng(1);
  const [q, s, dim] = [40, 60, 8];
  const queryEmb = Float32Array.from({ length: q * dim }, () => rng.normal());
  const siteEmb = Float32Array.from({ length: s * dim }, () => rng.normal());
  const siteBias = Float32Array.from({ length: s }, () => rng.normal());
  // More pairs than queries, so queries repeat inside chunks.
  const pairs = randomPairs(150, q, s, rng);
  const before = tf.memory().numTensors;
  for (const bias of [undefined, siteBias]) {
    const expected = bruteForce(dotScore(queryEmb, siteEmb, dim, bias), s, pairs);
    assert.ok(expected.recall_at_10 > expected.recall_at_1 && expected.mrr > 0);
    assertMetricsClose(await retrievalMetrics({ queryEmb, siteEmb, dim, pairs, siteBias: bias }), expected);
    for (const chunkPairs of [1, 7, 64]) {
      assertMetricsClose(await retrievalMetrics({ queryEmb, siteEmb, dim, pairs, siteBias: bias, chunkBytes: chunkPairs * 4 * s }), expected);
    }
  }
  assert.equal(tf.memory().numTensors, before);
});

test('ties count against the model: exact integer scores match the pessimistic brute force', async () => {
  await useTestBackend();
  const rng = new Rng(2);
  const [q, s, dim] = [30, 50, 3];
  // Entries in {-1, 0, 1}: scores are small integers, computed exactly, with many ties.
  const queryEmb = Float32Array.from({ length: q * dim }, () => rng.int(3) - 1);
  const siteEmb = Float32Array.from({ length: s * dim }, () => rng.int(3) - 1);
  const siteBias = Float32Array.from({ length: s }, () => rng.int(2));
  const pairs = randomPairs(100, q, s, rng);
  for (const bias of [undefined, siteBias]) {
    assertMetricsClose(
      await retrievalMetrics({ queryEmb, siteEmb, dim, pairs, siteBias: bias, chunkBytes: 9 * 4 * s }),
      bruteForce(dotScore(queryEmb, siteEmb, dim, bias), s, pairs),
    );
  }
  // A collapsed encoder scores every site alike: every pair ranks last, not first.
  const collapsed = await retrievalMetrics({ queryEmb: new Float32Array(q * dim), siteEmb: new Float32Array(s * dim), dim, pairs });
  assertMetricsClose(collapsed, { recall_at_1: 0, recall_at_10: 0, mrr: 1 / s });
});

test('a perfect embedding gives recall 1 and MRR 1', async () => {
  await useTestBackend();
  const s = 12;
  // Site j is the unit vector e_j; query i clicked site (i mod s) and points exactly at it.
  const siteEmb = new Float32Array(s * s);
  for (let j = 0; j < s; j++) siteEmb[j * s + j] = 1;
  const q = 30;
  const queryEmb = new Float32Array(q * s);
  for (let i = 0; i < q; i++) queryEmb[i * s + (i % s)] = 0.5;
  const query = Int32Array.from({ length: 2 * q }, (_, i) => i % q);
  const pairs = { query, site: Int32Array.from(query, (i) => i % s), weight: Float64Array.from(query, (i) => 1 + (i % 3)) };
  assert.deepEqual(await retrievalMetrics({ queryEmb, siteEmb, dim: s, pairs }), { recall_at_1: 1, recall_at_10: 1, mrr: 1 });
});

test('metrics are weighted by clicks', async () => {
  await useTestBackend();
  // One query, scores 20, 19, ..., 1 for sites 0..19 (site bias only, zero embeddings).
  const siteBias = Float32Array.from({ length: 20 }, (_, j) => 20 - j);
  const pairs = { query: Int32Array.from([0, 0]), site: Int32Array.from([0, 19]), weight: Float64Array.from([3, 1]) };
  const m = await retrievalMetrics({ queryEmb: new Float32Array(2), siteEmb: new Float32Array(40), dim: 2, pairs, siteBias });
  assertMetricsClose(m, { recall_at_1: 0.75, recall_at_10: 0.75, mrr: (3 + 1 / 20) / 4 });
});

test('popularity baseline ranks every query by site popularity, ties pessimistic', async () => {
  const rng = new Rng(3);
  const s = 40;
  const popularity = Float64Array.from({ length: s }, () => rng.int(8)); // many ties
  const pairs = randomPairs(200, 10, s, rng);
  assertMetricsClose(
    popularityMetrics(popularity, pairs),
    bruteForce((_q, j) => popularity[j]!, s, pairs),
  );
  // Sites 0..3 with clicks 5, 9, 9, 1: site 1 and 2 share rank 2, site 0 ranks 3, site 3 ranks 4.
  const small = Float64Array.from([5, 9, 9, 1]);
  const m = popularityMetrics(small, { query: Int32Array.from([0, 0, 0]), site: Int32Array.from([1, 0, 3]), weight: Float64Array.from([1, 1, 2]) });
  assertMetricsClose(m, { recall_at_1: 0, recall_at_10: 1, mrr: (1 / 2 + 1 / 3 + 2 / 4) / 4 });
  assertMetricsClose(
    popularityMetrics(Float64Array.from([1, 7, 3]), { query: Int32Array.from([4]), site: Int32Array.from([1]), weight: Float64Array.from([2]) }),
    { recall_at_1: 1, recall_at_10: 1, mrr: 1 },
  );
});

test('bad input gets a clear error and no tensor is left behind', async () => {
  await useTestBackend();
  const before = tf.memory().numTensors;
  const sites: ScoredSites = { ids: Int32Array.from([0, 1, 2]), emb: Float32Array.from([1, 0, 0, 1, 1, 1]) };
  const pairs = (query: number[], site: number[], weight: number[]) => ({
    query: Int32Array.from(query),
    site: Int32Array.from(site),
    weight: Float64Array.from(weight),
  });
  const ok = { queryEmb: new Float32Array(4), dim: 2, candidates: sites, positives: sites, pairs: pairs([0], [0], [1]) };
  await assert.rejects(countRivals({ ...ok, pairs: pairs([2], [0], [1]) }), /query 2 is outside \[0, 2\)/);
  await assert.rejects(countRivals({ ...ok, pairs: pairs([0], [3], [1]) }), /pair 0 site 3 is not among the positives/);
  await assert.rejects(countRivals({ ...ok, pairs: pairs([0], [0], [0]) }), /no weight/);
  await assert.rejects(countRivals({ ...ok, pairs: pairs([], [], []) }), /no pairs/);
  await assert.rejects(countRivals({ ...ok, pairs: pairs([0, 1], [0], [1, 1]) }), /2 queries, 1 sites/);
  await assert.rejects(countRivals({ ...ok, pairs: pairs([0], [0], [-1]) }), /weight -1/);
  await assert.rejects(countRivals({ ...ok, queryEmb: Float32Array.from([0, Number.NaN]) }), /queryEmb row 0 holds NaN/);
  await assert.rejects(countRivals({ ...ok, candidates: { ...sites, bias: new Float32Array(2) } }), /candidates have 2 biases for 3 sites/);
  await assert.rejects(countRivals({ ...ok, positives: { ...sites, ids: Int32Array.from([0, 2, 1]) } }), /positives ids are not ascending at 2/);
  assert.throws(() => popularityMetrics(Float64Array.from([1, Number.NaN]), pairs([0], [0], [1])), /sitePopularity\[1\] is NaN/);
  assert.equal(tf.memory().numTensors, before);
});

test('members ranking against shares of the sites and adding their rivals get the one-member ranks exactly', async () => {
  await useTestBackend();
  const rng = new Rng(5);
  const [q, s, dim] = [25, 70, 6];
  const queryEmb = Float32Array.from({ length: q * dim }, () => rng.normal());
  const siteEmb = Float32Array.from({ length: s * dim }, () => rng.normal());
  // Duplicated sites make exact ties across the shares' boundaries.
  siteEmb.copyWithin(40 * dim, 10 * dim, 15 * dim);
  const siteBias = Float32Array.from({ length: s }, () => rng.normal());
  const pairs = randomPairs(120, q, s, rng);
  for (const bias of [undefined, siteBias]) {
    const alone = await retrievalMetrics({ queryEmb, siteEmb, dim, pairs, siteBias: bias });
    assertMetricsClose(alone, bruteForce(dotScore(queryEmb, siteEmb, dim, bias), s, pairs));
    for (const members of [2, 3, 7])
      assert.deepEqual(await retrievalMetrics({ queryEmb, siteEmb, dim, pairs, siteBias: bias, chunkBytes: 5 * 4 * s }, members), alone);
  }
});

test('speed: 20000 pairs over 5000 queries against 20000 sites × 64 dims', async () => {
  await useTestBackend();
  const rng = new Rng(4);
  const [q, s, dim] = [5000, 20000, 64];
  const queryEmb = Float32Array.from({ length: q * dim }, () => rng.normal());
  const siteEmb = Float32Array.from({ length: s * dim }, () => rng.normal());
  const pairs = randomPairs(20000, q, s, rng);
  const t0 = performance.now();
  const m = await retrievalMetrics({ queryEmb, siteEmb, dim, pairs });
  const ms = performance.now() - t0;
  console.log(`retrievalMetrics 20000 pairs / 5000 queries × 20000 sites × 64: ${ms.toFixed(0)} ms`);
  // Random embeddings: the clicked site ranks uniformly, MRR ≈ ln(S)/S.
  assert.ok(m.mrr < 0.01 && m.recall_at_10 < 0.01);
});
