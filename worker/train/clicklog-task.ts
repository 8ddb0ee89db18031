import type { Config } from '../../common/config/mod.js';
import { readClickLogMeta } from '../../common/synthetic-clicklog.js';
import { clickLogReadOptions, readClickLog } from '../data/clicklog-reader.js';
import type { EvaluationGroup } from '../eval/evaluation-group.js';
import { evaluateRetrieval, type RankingPlan } from './held-out-retrieval.js';
import { ClickLogModel, type ClickBatch } from './clicklog-model.js';
import { heldOutPairs, prepareClickLog, type ClickLogDataset } from './clicklog-dataset.js';
import { ExampleOrder } from './example-order.js';
import { selectRows, type FeatureRows } from '../text/text-features.js';
import type { CheckpointArray } from '../../common/checkpoint-file.js';
import type { TrainingTask } from './training-task.js';
import { UserError } from '../../common/user-error.js';
import { heldBytes } from '../../common/memory-parts.js';

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
    this.model = clickLogModelOf(config, data.siteFeatures);
    this.order = new ExampleOrder(data.events.length, config.seed);
    this.logQ = config.clicklog.logq_correction ? data.logQ : null;
    const log = data.log;
    this.description =
      `click log ${config.data}: ${log.rowQuery.length} rows, ${log.queries.length} queries, ${log.sites.length} sites, ` +
      `${data.events.length} training clicks, ${data.heldOut.length} held-out rows`;
  }

  /** Reads and prepares the click log named by `config.data`; `warn` receives skipped-line warnings. */
  static async load(config: Config, warn?: (message: string) => void): Promise<ClickLogTask> {
    const path = config.data!;
    const log = await readClickLog(path, clickLogReadOptions(config.clicklog, warn));
    const data = prepareClickLog(log, config.clicklog.holdout, config.clicklog.hash_buckets);
    if (data.events.length === 0) throw noTrainingClicks(config);
    const meta = await readClickLogMeta(path);
    return new ClickLogTask(data, config, meta?.true_mi ?? null, meta?.oracle_recall_at_10 ?? null);
  }

  get skipped(): Record<string, number> {
    return this.data.log.skipped;
  }

  dataBytes(): number {
    const { log, events, heldOut, siteClicks, logQ, queryFeatures, siteFeatures } = this.data;
    return heldBytes([log.rowQuery, log.rowSite, log.rowClicks, events, heldOut, siteClicks, logQ, queryFeatures, siteFeatures]);
  }

  /** Site names; the index is the site id. */
  async siteNames(): Promise<readonly string[]> {
    return this.data.log.sites;
  }

  batchAt(start: number, count: number): ClickBatch {
    const rows = this.order.slice(start, count);
    const { rowQuery, rowSite } = this.data.log;
    const ev = this.data.events;
    const queries = Int32Array.from(rows, (i) => rowQuery[ev[i]!]!);
    return { queryFeatures: selectRows(this.data.queryFeatures, queries), queryKeys: queries, sites: Int32Array.from(rows, (i) => rowSite[ev[i]!]!) };
  }

  readonly sharedEvaluation = true;

  async evaluate(step: number, tau: number, group: EvaluationGroup): Promise<Record<string, number | null>> {
    const { queryIds, pairs } = heldOutPairs(this.data, this.config.eval.max_queries);
    return evaluateRetrieval(
      this.model,
      step,
      tau,
      {
        queryFeatures: selectRows(this.data.queryFeatures, queryIds),
        pairs,
        siteClicks: this.data.siteClicks,
        logQ: this.data.logQ,
        logQInModel: this.logQ !== null,
        oracleRecallAt10: this.oracleRecallAt10,
      },
      rankingPlan(this.config, group),
    );
  }

  saveState(): Record<string, CheckpointArray> {
    return this.model.saveState();
  }

  restoreState(state: ReadonlyMap<string, CheckpointArray>): void {
    this.model.restoreState(state);
  }
}

/** How `config` has the held-out pairs ranked by `group`. */
export function rankingPlan(config: Config, group: EvaluationGroup): RankingPlan {
  return { group, sitesSample: config.eval.sites_sample, seed: config.seed };
}

/** The click-log model `config` describes over these site features; tables too large for the machine are one line saying what they need. */
export function clickLogModelOf(config: Config, siteFeatures: FeatureRows): ClickLogModel {
  const c = config.clicklog;
  try {
    return new ClickLogModel(siteFeatures, {
      buckets: c.hash_buckets,
      embeddingDim: c.embedding_dim,
      hiddenDim: c.hidden_dim,
      outputDim: c.output_dim,
      momentum: config.bank.momentum,
      sparseLr: config.train.sparse_lr,
      initialScale: 1 / config.temperature.value,
      learnableTemperature: config.temperature.learnable,
      siteTermGroup: c.site_term_group,
      siteIds: c.site_ids,
      seed: config.seed,
    });
  } catch (err) {
    // A typed array past the engine's limit, or memory the machine does not have.
    if (err instanceof RangeError) throw new UserError(`${tablesNeed(config)}; lower clicklog.hash_buckets or clicklog.embedding_dim (${err.message})`);
    throw err;
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
