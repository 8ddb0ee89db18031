import { heldBytes } from '../../common/memory-parts.js';
import { partitionPoint } from '../../common/partition-point.js';
import type { CheckpointArray } from '../../common/checkpoint-file.js';
import type { Config } from '../../common/config/mod.js';
import { PreparedDataset } from '../dataset/prepared-dataset.js';
import type { ShardRows } from '../dataset/shard-file.js';
import { BLOCK_SHARDS, ShardedExampleOrder } from '../dataset/sharded-example-order.js';
import { featureRowsFrom } from '../text/text-features.js';
import { siteFeatureRows } from '../dataset/site-features-file.js';
import { logQOf } from './clicklog-dataset.js';
import type { ClickBatch, ClickLogModel } from './clicklog-model.js';
import { clickLogModelOf, rankingPlan } from './clicklog-task.js';
import { evaluateRetrieval } from './held-out-retrieval.js';
import type { EvaluationGroup } from '../eval/evaluation-group.js';
import type { TrainingTask } from './training-task.js';

/** A training shard as a batch reads it: its rows, and where each row's examples start. */
interface LoadedShard {
  rows: ShardRows;
  /** firstExample[r] is the index of row r's first example; the last entry is the shard's examples. */
  firstExample: Float64Array;
}

/**
 * Query→site training on a prepared dataset (`infobound prepare`): the site vocabulary in memory, the
 * examples read from the shards of the blocks the assigned positions fall in, so a worker's memory
 * does not grow with the dataset's rows. The model, its state and the evaluation are a raw click log's.
 */
export class PreparedClickLogTask implements TrainingTask<ClickBatch> {
  readonly model: ClickLogModel;
  readonly description: string;
  readonly logQ: Float32Array | null;
  readonly order: ShardedExampleOrder;
  readonly trueMi: number | null;
  readonly sharedEvaluation = true;
  private readonly siteLogQ: Float32Array;
  private readonly loaded = new Map<number, Promise<LoadedShard>>();
  /** The loaded shards that have arrived (what {@link dataBytes} counts). */
  private readonly resident = new Map<number, LoadedShard>();

  private constructor(
    readonly dataset: PreparedDataset,
    readonly config: Config,
  ) {
    const m = dataset.manifest;
    this.model = clickLogModelOf(config, siteFeatureRows(dataset.sites, config.clicklog.hash_buckets));
    this.order = ShardedExampleOrder.ofDataset(m, config.seed);
    this.siteLogQ = logQOf(dataset.sites.clicks);
    this.logQ = config.clicklog.logq_correction ? this.siteLogQ : null;
    this.trueMi = m.true_mi;
    this.description =
      `prepared click log ${config.data}: ${m.rows.train} training rows in ${m.shards.length} shards, ${m.sites.count} sites, ` +
      `${m.examples} training clicks, ${m.rows.held_out} held-out rows`;
  }

  /** Opens the prepared dataset named by `config.data`. */
  static async load(config: Config): Promise<PreparedClickLogTask> {
    // The shards of two blocks: a step's positions may straddle a block boundary.
    return new PreparedClickLogTask(await PreparedDataset.open(config.data!, 2 * BLOCK_SHARDS), config);
  }

  get skipped(): Record<string, number> {
    return this.dataset.manifest.skipped;
  }

  /** Site names; the index is the site id. */
  siteNames(): Promise<readonly string[]> {
    return this.dataset.siteNames();
  }

  async batchAt(start: number, count: number): Promise<ClickBatch> {
    const places = this.order.locate(start, count);
    const shards = new Map<number, LoadedShard>();
    for (const s of new Set(places.map((p) => p.shard))) shards.set(s, await this.shard(s));
    this.forgetAllBut(shards);
    const mask = this.config.clicklog.hash_buckets - 1;
    const offsets = new Int32Array(count + 1);
    const ids: number[] = [];
    const queryKeys = new Int32Array(count);
    const sites = new Int32Array(count);
    places.forEach((p, i) => {
      const { rows, firstExample } = shards.get(p.shard)!;
      const r = rowOf(firstExample, p.example);
      sites[i] = rows.site[r]!;
      queryKeys[i] = rows.queryKey[r]! | 0;
      for (let f = rows.featureOffsets[r]!; f < rows.featureOffsets[r + 1]!; f++) ids.push(rows.featureHashes[f]! & mask);
      offsets[i + 1] = ids.length;
    });
    return { queryFeatures: { offsets, ids: Int32Array.from(ids) }, queryKeys, sites };
  }

  /**
   * Held-out retrieval over the first `eval.max_queries` held-out queries (in shard order), each with
   * every site it was clicked with, ranked against every site by the members of `group`.
   */
  async evaluate(step: number, tau: number, group: EvaluationGroup): Promise<Record<string, number | null>> {
    const maxQueries = this.config.eval.max_queries;
    const mask = this.config.clicklog.hash_buckets - 1;
    const queryRow = new Map<number, number>();
    const featureLists: number[][] = [];
    const q: number[] = [];
    const s: number[] = [];
    const w: number[] = [];
    for (let i = 0; i < this.dataset.manifest.held_out.length; i++) {
      const rows = await this.dataset.heldOutShard(i);
      for (let r = 0; r < rows.site.length; r++) {
        let row = queryRow.get(rows.queryKey[r]!);
        if (row === undefined) {
          if (queryRow.size >= maxQueries) continue;
          row = queryRow.size;
          queryRow.set(rows.queryKey[r]!, row);
          featureLists.push(Array.from(rows.featureHashes.subarray(rows.featureOffsets[r]!, rows.featureOffsets[r + 1]!), (h) => h & mask));
        }
        q.push(row);
        s.push(rows.site[r]!);
        w.push(rows.clicks[r]!);
      }
    }
    return evaluateRetrieval(
      this.model,
      step,
      tau,
      {
        queryFeatures: featureRowsFrom(featureLists),
        pairs: { query: Int32Array.from(q), site: Int32Array.from(s), weight: Float64Array.from(w) },
        siteClicks: this.dataset.sites.clicks,
        logQ: this.siteLogQ,
        logQInModel: this.logQ !== null,
        oracleRecallAt10: this.dataset.manifest.oracle_recall_at_10,
      },
      rankingPlan(this.config, group),
    );
  }

  dataBytes(): number {
    return heldBytes([this.resident, this.dataset.sites, this.siteLogQ, this.model.siteFeatures]);
  }

  saveState(): Record<string, CheckpointArray> {
    return this.model.saveState();
  }

  restoreState(state: ReadonlyMap<string, CheckpointArray>): void {
    this.model.restoreState(state);
  }

  private shard(i: number): Promise<LoadedShard> {
    let loading = this.loaded.get(i);
    if (loading === undefined) {
      loading = this.dataset.trainShard(i).then((rows) => {
        const firstExample = new Float64Array(rows.site.length + 1);
        for (let r = 0; r < rows.site.length; r++) firstExample[r + 1] = firstExample[r]! + rows.clicks[r]!;
        const shard = { rows, firstExample };
        if (this.loaded.get(i) === loading) this.resident.set(i, shard);
        return shard;
      });
      this.loaded.set(i, loading);
      loading.catch(() => this.loaded.delete(i));
    }
    return loading;
  }

  /** Keeps the shards of this batch (and so of its block) and lets go of the others once the block has moved on. */
  private forgetAllBut(keep: Map<number, LoadedShard>): void {
    if (this.loaded.size <= 2 * BLOCK_SHARDS) return;
    for (const i of this.loaded.keys()) {
      if (keep.has(i)) continue;
      this.loaded.delete(i);
      this.resident.delete(i);
    }
  }
}

/** The row whose examples include example `e`: the last row starting at or before it. */
function rowOf(firstExample: Float64Array, e: number): number {
  return partitionPoint(firstExample.length - 1, (r) => firstExample[r]! <= e) - 1;
}
