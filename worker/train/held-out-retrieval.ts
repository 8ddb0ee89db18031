import { indexInSorted } from '../../common/partition-point.js';
import { Rng } from '../../common/random.js';
import { segmentRange } from '../collective/ring-plan.js';
import { sumCounts, type EvaluationGroup } from '../eval/evaluation-group.js';
import { countRivals, metricsOfRanks, popularityMetrics, type RetrievalPairs, type ScoredSites } from '../eval/retrieval-metrics.js';
import type { FeatureRows } from '../text/text-features.js';
import type { ClickLogModel } from './clicklog-model.js';
import { idRange } from '../../common/id-range.js';

/** The held-out queries and their clicked sites, as {@link evaluateRetrieval} scores them. */
export interface HeldOut {
  /** Features of each held-out query (row i = query i of `pairs`). */
  queryFeatures: FeatureRows;
  pairs: RetrievalPairs;
  /** Training clicks per site (the popularity baseline) and log p̂(s) of each site. */
  siteClicks: Float64Array;
  logQ: Float32Array;
  /** True when the towers were trained with logQ correction (then their score alone ranks). */
  logQInModel: boolean;
  oracleRecallAt10: number | null;
}

/** How the sites are ranked: by whom, and against how many of them. */
export interface RankingPlan {
  /** The members sharing the ranking; each scores its share of the sites. */
  group: EvaluationGroup;
  /** Rank against this many sites drawn uniformly (the same on every member), 0 for all of them. */
  sitesSample: number;
  /** Seeds the sample. */
  seed: number;
}

/**
 * Ranks sites by p(s|q) ∝ p(s)·e^T: the critic T plus log p̂(s). With logQ correction T already
 * subtracts log p̂(s) from the towers' score, so the towers' score alone is the ranking. Each member
 * embeds and scores only its share of the sites, and the members add up every pair's rivals: the
 * ranks are exact, whatever the split. With `sitesSample` the rivals found among the sampled sites
 * are scaled to all sites: an estimate, labelled by `sampled_sites` (sampled Recall@k is biased
 * upwards for small samples: Krichene & Rendle, "On Sampled Metrics for Item Recommendation", KDD 2020).
 */
export async function evaluateRetrieval(
  model: ClickLogModel,
  step: number,
  tau: number,
  h: HeldOut,
  plan: RankingPlan,
): Promise<Record<string, number | null>> {
  const { pairs } = h;
  if (pairs.query.length === 0) return { held_out_pairs: 0 };
  const { group } = plan;
  const sites = h.siteClicks.length;
  const sample = plan.sitesSample > 0 && plan.sitesSample < sites ? sampleOf(sites, plan.sitesSample, plan.seed) : null;
  const ranked = sample?.length ?? sites;
  const share = segmentRange(ranked, group.world, group.rank);
  const shareIds = sample?.subarray(share.start, share.end) ?? idRange(share.start, share.end);
  const scored = async (ids: Int32Array): Promise<ScoredSites> => ({
    ids,
    emb: await model.embedSites(ids, step),
    ...(h.logQInModel ? {} : { bias: Float32Array.from(ids, (id) => tau * h.logQ[id]!) }),
  });
  const rivals = await countRivals({
    queryEmb: await model.embedQueries(h.queryFeatures),
    dim: model.dim,
    pairs,
    candidates: await scored(shareIds),
    positives: await scored(Int32Array.from(new Set(pairs.site)).sort()),
  });
  const total = await sumCounts(group, rivals);
  const ranks = Float64Array.from(total, (r, i) => {
    if (sample === null) return 1 + r;
    // The rivals among the sampled other sites, scaled to all the other sites.
    const others = ranked - (indexInSorted(sample, pairs.site[i]!) >= 0 ? 1 : 0);
    return 1 + (r * (sites - 1)) / others;
  });
  const m = metricsOfRanks(ranks, pairs.weight);
  const pop = popularityMetrics(h.siteClicks, pairs);
  return {
    recall_at_1: m.recall_at_1,
    recall_at_10: m.recall_at_10,
    mrr: m.mrr,
    popularity_recall_at_1: pop.recall_at_1,
    popularity_recall_at_10: pop.recall_at_10,
    popularity_mrr: pop.mrr,
    oracle_recall_at_10: h.oracleRecallAt10,
    held_out_pairs: pairs.query.length,
    held_out_queries: h.queryFeatures.offsets.length - 1,
    sites,
    ...(sample !== null ? { sampled_sites: ranked } : {}),
  };
}

/** `k` of the site ids [0, n), drawn uniformly without replacement by `seed`, ascending. */
export function sampleOf(n: number, k: number, seed: number): Int32Array {
  // A partial Fisher–Yates shuffle: the first k places of a seeded permutation.
  const ids = idRange(0, n);
  const rng = new Rng(seed);
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(n - i);
    const t = ids[i]!;
    ids[i] = ids[j]!;
    ids[j] = t;
  }
  return ids.slice(0, k).sort();
}
