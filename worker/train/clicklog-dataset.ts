import type { ClickLog } from '../data/clicklog-reader.js';
import { isHeldOutQuery } from '../data/holdout-split.js';
import { featurizeAll, type FeatureRows } from '../text/text-features.js';
import type { RetrievalPairs } from '../eval/retrieval-metrics.js';

/** A click log made ready for training: click events, a held-out split, features and site frequencies. */
export interface ClickLogDataset {
  log: ClickLog;
  /** Row index of every training click (a row with c clicks appears c times): one example per click. */
  events: Int32Array;
  /** Rows held out for evaluation. */
  heldOut: Int32Array;
  /** Training clicks per site. */
  siteClicks: Float64Array;
  /** log of each site's share of training clicks (logQ correction, Yi et al. 2019). */
  logQ: Float32Array;
  queryFeatures: FeatureRows;
  siteFeatures: FeatureRows;
}

/**
 * Holds out whole queries, chosen by a hash of the query string — stable across runs and worker counts
 * and independent of the counts, so the held-out clicks follow the joint distribution — and expands
 * training rows into click events (fractional clicks round to the nearest integer). Holding out
 * (query, site) rows instead would score a model down for having learned the sites each query was
 * seen with: a held-out row is by construction a site its query was never clicked with in training.
 */
export function prepareClickLog(log: ClickLog, holdout: number, buckets: number): ClickLogDataset {
  const { train, held } = splitByQuery(log, holdout);
  const siteClicks = new Float64Array(log.sites.length);
  let total = 0;
  for (const r of train) {
    const c = clicksOf(log, r);
    siteClicks[log.rowSite[r]!]! += c;
    total += c;
  }
  const events = new Int32Array(total);
  let k = 0;
  for (const r of train) for (let c = clicksOf(log, r); c > 0; c--) events[k++] = r;
  const logQ = logQOf(siteClicks);
  return {
    log,
    events,
    heldOut: Int32Array.from(held),
    siteClicks,
    logQ,
    queryFeatures: featurizeAll(log.queries, buckets),
    siteFeatures: featurizeAll(log.sites, buckets),
  };
}

/** Held-out pairs for retrieval metrics over at most `maxQueries` distinct queries (first seen first). */
export function heldOutPairs(d: ClickLogDataset, maxQueries: number): { queryIds: Int32Array; pairs: RetrievalPairs } {
  const queryRow = new Map<number, number>();
  const q: number[] = [];
  const s: number[] = [];
  const w: number[] = [];
  for (const r of d.heldOut) {
    const qid = d.log.rowQuery[r]!;
    let row = queryRow.get(qid);
    if (row === undefined) {
      if (queryRow.size >= maxQueries) continue;
      row = queryRow.size;
      queryRow.set(qid, row);
    }
    q.push(row);
    s.push(d.log.rowSite[r]!);
    w.push(d.log.rowClicks[r]!);
  }
  return {
    queryIds: Int32Array.from(queryRow.keys()),
    pairs: { query: Int32Array.from(q), site: Int32Array.from(s), weight: Float64Array.from(w) },
  };
}

/** Training and held-out rows: a row is held out when its query's hash falls below `holdout`. */
function splitByQuery(log: ClickLog, holdout: number): { train: number[]; held: number[] } {
  const train: number[] = [];
  const held: number[] = [];
  for (let r = 0; r < log.rowQuery.length; r++) (isHeldOutQuery(log.queries[log.rowQuery[r]!]!, holdout) ? held : train).push(r);
  return { train, held };
}

/** Training examples row `r` gives: its clicks, rounded to the nearest integer. */
function clicksOf(log: ClickLog, r: number): number {
  return Math.round(log.rowClicks[r]!);
}

/** Training examples (click events) of `log` after the held-out split: the length of {@link prepareClickLog}'s events. */
export function trainingClickCount(log: ClickLog, holdout: number): number {
  let total = 0;
  for (const r of splitByQuery(log, holdout).train) total += clicksOf(log, r);
  return total;
}

/** log of each site's share of the training clicks (logQ correction, Yi et al. 2019); a site never clicked in training still gets a finite correction: half a click. */
export function logQOf(siteClicks: Float64Array): Float32Array {
  let total = 0;
  for (const c of siteClicks) total += c;
  return Float32Array.from(siteClicks, (c) => Math.log(Math.max(c, 0.5) / Math.max(total, 1)));
}
