import type { Config } from '../../common/config/mod.js';
import { readClickLogMeta } from '../../common/synthetic-clicklog.js';
import { readClickLog } from '../data/clicklog-reader.js';
import { popularityMetrics, retrievalMetrics } from '../eval/retrieval-metrics.js';
import { ClickLogModel, type ClickBatch } from './clicklog-model.js';
import { heldOutPairs, prepareClickLog, type ClickLogDataset } from './clicklog-dataset.js';
import { ExampleOrder } from './example-order.js';
import type { CheckpointArray } from '../../common/checkpoint-file.js';
import type { TrainingTask } from './training-task.js';
import { UserError } from '../../common/user-error.js';

/** Query→site training on a click log (TSV or JSONL, optionally gzipped). */
export class ClickLogTask implements TrainingTask<ClickBatch> {
  readonly model: ClickLogModel;
  readonly description: string;
  readonly logQ: Float32Array | null;
  readonly order: ExampleOrder;

  private constructor(
    readonly data: ClickLogDataset,
    readonly config: Config,
    readonly trueMi: number | null,
    readonly oracleRecallAt10: number | null,
  ) {
    const c = config.clicklog;
    this.model = new ClickLogModel(data.queryFeatures, data.siteFeatures, {
      buckets: c.hash_buckets,
      embeddingDim: c.embedding_dim,
      hiddenDim: c.hidden_dim,
      outputDim: c.output_dim,
      momentum: config.bank.momentum,
      sparseLr: config.train.sparse_lr,
      initialScale: 1 / config.temperature.value,
      learnableTemperature: config.temperature.learnable,
      siteTermGroup: c.site_term_group,
      seed: config.seed,
    });
    this.order = new ExampleOrder(data.events.length, config.seed);
    this.logQ = c.logq_correction ? data.logQ : null;
    const log = data.log;
    this.description =
      `click log ${config.data}: ${log.rowQuery.length} rows, ${log.queries.length} queries, ${log.sites.length} sites, ` +
      `${data.events.length} training clicks, ${data.heldOut.length} held-out rows`;
  }

  /** Reads and prepares the click log named by `config.data`; `warn` receives skipped-line warnings. */
  static async load(config: Config, warn?: (message: string) => void): Promise<ClickLogTask> {
    const path = config.data!;
    const log = await readClickLog(path, { format: config.clicklog.format, maxLineBytes: config.clicklog.max_line_bytes, ...(warn ? { warn } : {}) });
    const data = prepareClickLog(log, config.clicklog.holdout, config.clicklog.hash_buckets);
    if (data.events.length === 0) throw noTrainingClicks(config);
    const meta = await readClickLogMeta(path);
    try {
      return new ClickLogTask(data, config, meta?.true_mi ?? null, meta?.oracle_recall_at_10 ?? null);
    } catch (err) {
      // A typed array past the engine's limit, or memory the machine does not have.
      if (err instanceof RangeError) throw new UserError(`${tablesNeed(config)}; lower clicklog.hash_buckets or clicklog.embedding_dim (${err.message})`);
      throw err;
    }
  }

  get skipped(): Record<string, number> {
    return this.data.log.skipped;
  }

  batchAt(start: number, count: number): ClickBatch {
    const rows = this.order.slice(start, count);
    const { rowQuery, rowSite } = this.data.log;
    const ev = this.data.events;
    return { queries: Int32Array.from(rows, (i) => rowQuery[ev[i]!]!), sites: Int32Array.from(rows, (i) => rowSite[ev[i]!]!) };
  }

  /**
   * Ranks sites by p(s|q) ∝ p(s)·e^T: the critic T plus log p̂(s). With logQ correction T already
   * subtracts log p̂(s) from the towers' score, so the towers' score alone is the ranking.
   */
  async evaluate(step: number, tau: number): Promise<Record<string, number | null>> {
    const { queryIds, pairs } = heldOutPairs(this.data, this.config.eval.max_queries);
    if (pairs.query.length === 0) return { held_out_pairs: 0 };
    const sites = Int32Array.from(this.data.log.sites, (_, i) => i);
    const m = await retrievalMetrics({
      queryEmb: await this.model.embedQueries(queryIds),
      siteEmb: await this.model.embedSites(sites, step),
      dim: this.model.dim,
      pairs,
      ...(this.logQ === null ? { siteBias: Float32Array.from(this.data.logQ, (l) => tau * l) } : {}),
    });
    const pop = popularityMetrics(this.data.siteClicks, pairs);
    return {
      recall_at_1: m.recall_at_1,
      recall_at_10: m.recall_at_10,
      mrr: m.mrr,
      popularity_recall_at_1: pop.recall_at_1,
      popularity_recall_at_10: pop.recall_at_10,
      popularity_mrr: pop.mrr,
      oracle_recall_at_10: this.oracleRecallAt10,
      held_out_pairs: pairs.query.length,
      held_out_queries: queryIds.length,
    };
  }

  /**
   * The lazy momentum table is saved as it stands, with each row's stamp: settling every row first
   * would change the live run's rounding, and a resumed run would then differ in the last bits from
   * one that never stopped.
   */
  saveState(): Record<string, CheckpointArray> {
    const m = this.model;
    const f32 = (data: Float32Array, shape: number[]): CheckpointArray => ({ dtype: 'float32', shape, data });
    const e = m.options.embeddingDim;
    const rows = m.options.buckets;
    return {
      'table.query': f32(m.queryTable.table, [rows, e]),
      'table.site': f32(m.siteTable.table, [rows, e]),
      'table.key': f32(m.keyTable.table, [rows, e]),
      'adagrad.query': f32(m.queryOpt.accum, [rows]),
      'adagrad.site': f32(m.siteOpt.accum, [rows]),
      'key.dense': f32(m.key.values, [m.key.size]),
      'key.stamp': { dtype: 'int32', shape: [rows], data: m.keyTable.stamp },
    };
  }

  restoreState(state: ReadonlyMap<string, CheckpointArray>): void {
    const m = this.model;
    const put = (name: string, target: Float32Array | Int32Array) => target.set(state.get(name)!.data);
    put('table.query', m.queryTable.table);
    put('table.site', m.siteTable.table);
    put('table.key', m.keyTable.table);
    put('adagrad.query', m.queryOpt.accum);
    put('adagrad.site', m.siteOpt.accum);
    put('key.dense', m.key.values);
    put('key.stamp', m.keyTable.stamp);
  }
}

/** What the click-log model's tables take, in words: three tables of rows × embedding_dim floats, two Adagrad rows and the bookkeeping. */
function tablesNeed(config: Config): string {
  const { hash_buckets: rows, embedding_dim: e } = config.clicklog;
  // Three float tables, two Adagrad accumulators, the momentum stamps and two scratch slot maps.
  const bytes = 4 * rows * (3 * e + 2 + 1 + 2);
  return `the click-log tables (clicklog.hash_buckets ${rows} × clicklog.embedding_dim ${e}) need ${(bytes / 2 ** 30).toFixed(1)} GiB, in arrays of ${rows * e} floats`;
}

/** The error of a click log with nothing left to train on. */
export function noTrainingClicks(config: Config): UserError {
  return new UserError(`${config.data}: no training clicks left after holding out ${config.clicklog.holdout} of the rows`);
}
