import { availableParallelism } from 'node:os';
import { UserError } from '../../../common/user-error.js';
import type { CriticRows } from '../../../common/estimators.js';
import { logitBiasParts } from '../../bank/logit-bias.js';
import type { ParamSet } from '../../model/param-set.js';
import { ClickLogModel, siteTermMask, type ClickBatch } from '../../train/clicklog-model.js';
import { ImageModel, type ImageBatch } from '../../train/image-model.js';
import type { ContrastiveModel } from '../../train/contrastive-model.js';
import { learnsTemperature, logitScale } from '../../train/logit-scale.js';
import type { BankShardInput, BankShardStats, DenseContext, DenseEngine, DenseResult, PartitionedBankEngine } from '../../train/dense-engine.js';
import { bankShardGradGraph, bankShardStatsGraph, type BankShardShape } from './losses/bank-shard-softmax.js';
import type { GraphFeed, GraphSession, OnnxDevice } from './graph-session.js';
import { clicklogPartitionedGraph, clicklogTrainingGraph } from './models/clicklog-training-graph.js';
import { CRITIC_ROW_COLUMNS } from './losses/critic-rows.js';
import { towerEmbedGraph } from './models/embed-graph.js';
import { imageEmbedGraph, imageTrainingGraph } from './models/image-training-graph.js';
import type { ObjectiveHeadShape } from './models/objective-head.js';

/** Options of the {@link OnnxDenseEngine}. */
export interface OnnxEngineOptions {
  /** @default 'cpu' */
  device?: OnnxDevice;
  /** Threads of the CPU engine's operators. @default all cores of this machine */
  threads?: number;
}

/**
 * The dense math on ONNX Runtime: the step's forward and backward, the momentum key tower and the
 * critic's row statistics as ONNX graphs (worker/engine/onnx/models), each built once per shape and
 * objective head and kept in a session: the click-log and image models, every objective.
 */
export class OnnxDenseEngine implements DenseEngine, PartitionedBankEngine {
  private readonly sessions = new Map<string, { graph: BuiltGraph; session: Promise<GraphSession> }>();
  private readonly device: OnnxDevice;
  private readonly threads: number;

  constructor(o: OnnxEngineOptions = {}) {
    this.device = o.device ?? 'cpu';
    this.threads = o.threads ?? availableParallelism();
  }

  async momentumKeys<B>(model: ContrastiveModel<B>, batch: B, step: number): Promise<Float32Array> {
    if (model instanceof ImageModel) return this.imageKeys(model, batch as ImageBatch);
    const m = clickLogModel(model);
    const pooled = m.pooledKeyRows(batch as ClickBatch, step);
    const { embeddingDim: e, hiddenDim: h, outputDim: d } = m.options;
    const rows = pooled.length / e;
    const graph = await this.session(`embed-s-${rows}-${e}-${h}-${d}`, () => towerEmbedGraph('s', rows, [e, h, d]));
    const out = await graph.session.run({ pooled: { data: pooled, dims: [rows, e] }, ...paramFeeds(m.key) });
    return out[graph.output]!;
  }

  async step<B>(
    model: ContrastiveModel<B>,
    batch: B,
    keys: Float32Array,
    positiveIds: Int32Array,
    ctx: DenseContext,
    wantCritic: boolean,
  ): Promise<DenseResult> {
    const isImages = model instanceof ImageModel;
    const online = isImages ? model.online : clickLogModel(model).online;
    const b = positiveIds.length;
    const { bank } = ctx;
    const learnable = learnsTemperature(online);
    const layout = ctx.objective !== 'infonce' && bank.filled === 0 ? 'in-batch' : 'queue';
    const head: ObjectiveHeadShape = {
      objective: ctx.objective,
      bank: bank.capacity,
      layout,
      maskHits: ctx.objective === 'infonce' && ctx.maskAccidentalHits,
      logged: wantCritic && layout === 'queue',
    };
    const train = isImages ? await this.imageTrainingSession(model, b, head) : await this.clickLogTrainingSession(clickLogModel(model), b, head);
    const scale = logitScale(online, ctx.fixedScale);
    const modelInputs: Record<string, GraphFeed> = isImages
      ? this.imageInputs(model, batch as ImageBatch)
      : clickLogInputs(clickLogModel(model), batch as ClickBatch);
    const out = await train.session.run({
      ...modelInputs,
      keys: { data: keys, dims: [b, model.dim] },
      ...headFeeds(head, ctx, positiveIds),
      ...(learnable ? {} : { scale: { data: Float32Array.of(ctx.fixedScale), dims: [] } }),
      ...paramFeeds(online),
    });
    const grad = flatGradient(online, out);
    const result: DenseResult = { loss: out.loss![0]!, scale, grad, inputGrads: train.inputGrads.map((name) => out[name]!) };
    if (ctx.objective === 'mine') ctx.mine.observe(out.neg_log_mean![0]!);
    if (head.logged) result.critic = criticRowsOf(out.critic_rows!, b, bank.filled);
    return result;
  }

  async queryEmbeddings<B>(model: ContrastiveModel<B>, batch: B): Promise<Float32Array> {
    const m = clickLogModel(model);
    const pooled = m.pooledQueryRows(batch as ClickBatch);
    const { embeddingDim: e, hiddenDim: h, outputDim: d } = m.options;
    const rows = pooled.length / e;
    const graph = await this.session(`embed-q-${rows}-${e}-${h}-${d}`, () => towerEmbedGraph('q', rows, [e, h, d]));
    const out = await graph.session.run({ pooled: { data: pooled, dims: [rows, e] }, ...paramFeeds(m.online, 'q.') });
    return out[graph.output]!;
  }

  async bankShardStats(shard: BankShardInput, logged: boolean): Promise<BankShardStats> {
    const shape = { ...bankShardShape(shard), logged };
    const graph = await this.session(`bank-shard-stats-${JSON.stringify(shape)}`, () => bankShardStatsGraph(shape));
    const out = await graph.session.run(bankShardFeeds(shard));
    const stats: BankShardStats = { max: out.row_max!, sumExp: out.row_sum_exp! };
    if (logged) stats.critic = { max: out.critic_max!, sumExp: out.critic_sum_exp!, softplus: out.critic_softplus! };
    return stats;
  }

  async bankShardWeightedKeys(shard: BankShardInput, rowLse: Float32Array): Promise<Float32Array> {
    const shape = bankShardShape(shard);
    const graph = await this.session(`bank-shard-grad-${JSON.stringify(shape)}`, () => bankShardGradGraph(shape));
    const out = await graph.session.run({ ...bankShardFeeds(shard), row_lse: { data: rowLse, dims: [shape.rows, 1] } });
    return out.weighted_keys!;
  }

  async partitionedBackward<B>(
    model: ContrastiveModel<B>,
    batch: B,
    keys: Float32Array,
    head: { q: Float32Array; scale: number },
    fixedScale: number,
  ): Promise<Pick<DenseResult, 'grad' | 'inputGrads'>> {
    const m = clickLogModel(model);
    const b = (batch as ClickBatch).sites.length;
    const { embeddingDim, hiddenDim, outputDim, learnableTemperature } = m.options;
    const shape = { batch: b, embeddingDim, hiddenDim, outputDim, learnableTemperature };
    const graph = await this.session(`train-clicklog-partitioned-${JSON.stringify(shape)}`, () => clicklogPartitionedGraph(shape));
    const out = await graph.session.run({
      ...clickLogInputs(m, batch as ClickBatch),
      keys: { data: keys, dims: [b, outputDim] },
      head_grad_q: { data: head.q, dims: [b, outputDim] },
      ...(learnableTemperature
        ? { head_grad_scale: { data: Float32Array.of(head.scale), dims: [] } }
        : { scale: { data: Float32Array.of(fixedScale), dims: [] } }),
      ...paramFeeds(m.online),
    });
    return { grad: flatGradient(m.online, out), inputGrads: graph.inputGrads.map((name) => out[name]!) };
  }

  private clickLogTrainingSession(m: ClickLogModel, b: number, head: ObjectiveHeadShape) {
    const { embeddingDim, hiddenDim, outputDim, learnableTemperature } = m.options;
    const shape = { batch: b, embeddingDim, hiddenDim, outputDim, learnableTemperature, head };
    return this.session(`train-clicklog-${JSON.stringify(shape)}`, () => clicklogTrainingGraph(shape));
  }

  private imageTrainingSession(m: ImageModel, b: number, head: ObjectiveHeadShape) {
    const shape = { ...this.imageShape(m, b), learnableTemperature: m.options.learnableTemperature, head };
    return this.session(`train-images-${JSON.stringify(shape)}`, () => imageTrainingGraph(shape));
  }

  private imageInputs(m: ImageModel, batch: ImageBatch): Record<string, GraphFeed> {
    return { images: { data: batch.query, dims: [batch.indices.length, m.options.rows * m.options.cols] } };
  }

  private async imageKeys(m: ImageModel, batch: ImageBatch): Promise<Float32Array> {
    const n = batch.indices.length;
    const shape = this.imageShape(m, n);
    const built = await this.session(`embed-images-${JSON.stringify(shape)}`, () => imageEmbedGraph(shape));
    const params = paramFeeds(m.key);
    // The key encoder's copy of the logit scale is no input of the forward graph.
    const feeds: Record<string, GraphFeed> = Object.fromEntries(built.params.map((name) => [name, params[name]!]));
    const out = await built.session.run({ ...feeds, images: { data: batch.key, dims: [n, m.options.rows * m.options.cols] } });
    return out[built.output]!;
  }

  private imageShape(m: ImageModel, batch: number) {
    const [mapRows, mapCols] = m.mapShape;
    const { rows: imageRows, cols: imageCols, channels, hiddenDim, outputDim } = m.options;
    return { batch, imageRows, imageCols, mapRows, mapCols, channels, hiddenDim, outputDim };
  }

  /** The graph `key` as built (its model and output names) and its session, built and opened on first use. */
  private async session<G extends BuiltGraph>(key: string, build: () => G): Promise<G & { session: GraphSession }> {
    let entry = this.sessions.get(key);
    if (entry === undefined) {
      const graph = build();
      // ONNX Runtime's native library loads with the first graph, so a tfjs run never loads it.
      const opened = import('./graph-session.js').then(({ GraphSession }) =>
        GraphSession.open(graph.model, key, { device: this.device, threads: this.threads }),
      );
      entry = { graph, session: opened };
      this.sessions.set(key, entry);
    }
    return { ...(entry.graph as G), session: await entry.session };
  }
}

/** What the cache keeps of a built graph: at least its model bytes (each kind adds its output names). */
interface BuiltGraph {
  model: Uint8Array;
}

/** The click-log model as the graphs know it (the image model is the other one they know). */
function clickLogModel(model: ContrastiveModel<unknown>): ClickLogModel {
  if (!(model instanceof ClickLogModel)) throw new UserError('--engine onnx: this model is not built as graphs; use --engine tfjs');
  return model;
}

/** The objective head's inputs (models/objective-head.ts): the bank as it is, the bias in parts, MINE's denominator. */
function headFeeds(head: ObjectiveHeadShape, ctx: DenseContext, positiveIds: Int32Array): Record<string, GraphFeed> {
  const b = positiveIds.length;
  const feeds: Record<string, GraphFeed> = {};
  if (head.objective === 'mine') {
    const ema = ctx.mine.ema;
    feeds.mine_log_denominator = { data: Float32Array.of(ema === undefined ? 0 : Math.log(ema)), dims: [] };
    feeds.mine_use_batch = { data: Float32Array.of(ema === undefined ? 1 : 0), dims: [] };
  }
  if (head.layout === 'in-batch') return feeds;
  const { bank } = ctx;
  const k = bank.capacity;
  const parts = logitBiasParts(bank, { positiveIds, logQ: ctx.logQ, inBatchNegatives: ctx.inBatchNegatives, maskAccidentalHits: head.maskHits });
  feeds.bank = { data: bank.keys, dims: [k, bank.dim] };
  feeds.positive_bias = { data: parts.positive, dims: [b, 1] };
  feeds.bank_bias = { data: parts.bank, dims: [1, k] };
  if (head.objective !== 'infonce') {
    feeds.neg_count = { data: Float32Array.of(b * bank.filled), dims: [] };
    return feeds;
  }
  feeds.batch_bias = { data: parts.batch, dims: [b, b] };
  if (head.maskHits) {
    feeds.hit_ids = { data: parts.hitIds, dims: [b, 1] };
    feeds.bank_ids = { data: bank.ids, dims: [1, k] };
  }
  return feeds;
}

/** The critic's row statistics from the graph's B×4 output (losses/critic-rows.ts), over `filled` negatives a row. */
function criticRowsOf(rows: Float32Array, b: number, filled: number): CriticRows {
  const column = (c: number) => Float32Array.from({ length: b }, (_, i) => rows[i * CRITIC_ROW_COLUMNS.length + c]!);
  const [pos, negLogSumExp, negMax, negSoftplus] = CRITIC_ROW_COLUMNS.map((_, c) => column(c)) as [Float32Array, Float32Array, Float32Array, Float32Array];
  return { rows: b, negativesPerRow: filled, pos, negLogSumExp, negMax, negSoftplus };
}

/** The click-log graph's batch inputs: the pooled query and site rows and the site→query mask. */
function clickLogInputs(m: ClickLogModel, batch: ClickBatch): Record<string, GraphFeed> {
  const [pooledQ, pooledS] = m.pooledRows(batch);
  const b = batch.sites.length;
  const e = m.options.embeddingDim;
  return {
    pooled_q: { data: pooledQ, dims: [b, e] },
    pooled_s: { data: pooledS, dims: [b, e] },
    site_mask: { data: siteTermMask(batch, m.options.siteTermGroup), dims: [b, b] },
  };
}

/** Every parameter of `params` (whose name starts with `prefix`) as a graph input named after it (views, no copies). */
function paramFeeds(params: ParamSet, prefix = ''): Record<string, GraphFeed> {
  return Object.fromEntries(
    params.specs.filter((spec) => spec.name.startsWith(prefix)).map((spec) => [spec.name, { data: paramValues(params, spec.name), dims: spec.shape }]),
  );
}

/** The graph's `grad.<name>` outputs as one flat gradient in ParamSet order. */
function flatGradient(params: ParamSet, out: Record<string, Float32Array>): Float32Array {
  const grad = new Float32Array(params.size);
  params.specs.forEach((spec, i) => grad.set(out[`grad.${spec.name}`]!, params.offsets[i]!));
  return grad;
}

function bankShardShape(shard: BankShardInput): BankShardShape {
  return { rows: shard.q.length / shard.dim, keys: shard.bankBias.length, dim: shard.dim, maskHits: shard.hits !== null };
}

/** The inputs of a bank shard's graphs (losses/bank-shard-softmax.ts). */
function bankShardFeeds(shard: BankShardInput): Record<string, GraphFeed> {
  const { rows: n, keys: k, dim: d } = bankShardShape(shard);
  return {
    q: { data: shard.q, dims: [n, d] },
    scale: { data: Float32Array.of(shard.scale), dims: [] },
    bank: { data: shard.keys, dims: [k, d] },
    bank_bias: { data: shard.bankBias, dims: [1, k] },
    ...(shard.hits === null ? {} : { hit_ids: { data: shard.hits.rowIds, dims: [n, 1] }, bank_ids: { data: shard.hits.slotIds, dims: [1, k] } }),
  };
}

function paramValues(params: ParamSet, name: string): Float32Array {
  const i = params.specs.findIndex((s) => s.name === name);
  const spec = params.specs[i]!;
  const off = params.offsets[i]!;
  return params.values.subarray(off, off + spec.shape.reduce((n, x) => n * x, 1));
}
