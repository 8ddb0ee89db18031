import { availableParallelism } from 'node:os';
import { UserError } from '../../../common/user-error.js';
import { logitBias } from '../../bank/logit-bias.js';
import type { ParamSet } from '../../model/param-set.js';
import { ClickLogModel, siteTermMask, type ClickBatch } from '../../train/clicklog-model.js';
import { ImageModel, type ImageBatch } from '../../train/image-model.js';
import type { ContrastiveModel } from '../../train/contrastive-model.js';
import { LOGIT_SCALE } from '../../train/contrastive-step.js';
import type { DenseContext, DenseEngine, DenseResult } from '../../train/dense-engine.js';
import type { GraphSession, OnnxDevice, Tensor32 } from './graph-session.js';
import { clicklogTrainingGraph } from './models/clicklog-training-graph.js';
import { criticScoresGraph } from './models/critic-scores-graph.js';
import { towerEmbedGraph } from './models/embed-graph.js';
import { imageEmbedGraph, imageTrainingGraph } from './models/image-training-graph.js';

/** Options of the {@link OnnxDenseEngine}. */
export interface OnnxEngineOptions {
  /** @default 'cpu' */
  device?: OnnxDevice;
  /** Threads of the CPU engine's operators. @default all cores of this machine */
  threads?: number;
}

/**
 * The dense math on ONNX Runtime: the step's forward and backward, the momentum key tower and the
 * critic scores as ONNX graphs (worker/engine/onnx/models), each built once per shape and kept in a
 * session. The graphs so far cover the click-log and image models with the InfoNCE objective; any
 * other objective is one line naming `--engine tfjs`.
 */
export class OnnxDenseEngine implements DenseEngine {
  private readonly sessions = new Map<string, BuiltGraph & { session: Promise<GraphSession> }>();
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
    wantScores: boolean,
  ): Promise<DenseResult> {
    if (ctx.objective !== 'infonce') throw new UserError(`--engine onnx: the ${ctx.objective} objective is not built as a graph yet; use --engine tfjs`);
    const isImages = model instanceof ImageModel;
    const online = isImages ? model.online : clickLogModel(model).online;
    const b = positiveIds.length;
    const k = ctx.bank.capacity;
    const d = model.dim;
    const learnable = online.specs.some((s) => s.name === LOGIT_SCALE);
    const train = isImages ? await this.imageTrainingSession(model, b, k) : await this.clickLogTrainingSession(clickLogModel(model), b, k);
    const bias = logitBias(ctx.bank, { positiveIds, logQ: ctx.logQ, inBatchNegatives: ctx.inBatchNegatives, maskAccidentalHits: ctx.maskAccidentalHits });
    const scale = learnable ? Math.fround(Math.exp(paramValues(online, LOGIT_SCALE)[0]!)) : ctx.fixedScale;
    const modelInputs: Record<string, Tensor32> = isImages
      ? this.imageInputs(model, batch as ImageBatch)
      : clickLogInputs(clickLogModel(model), batch as ClickBatch);
    const out = await train.session.run({
      ...modelInputs,
      keys: { data: keys, dims: [b, d] },
      bank: { data: ctx.bank.keys, dims: [k, d] },
      bias: { data: bias, dims: [b, b + k] },
      ...(learnable ? {} : { scale: { data: Float32Array.of(ctx.fixedScale), dims: [] } }),
      ...paramFeeds(online),
    });
    // Click-log graphs also report the loss with the site→query term; image graphs have none.
    const [lossName, qName, ...gradNames] = isImages ? train.outputs! : [train.outputs![0]!, ...train.outputs!.slice(2)];
    // The gradients come in ParamSet order, which is also the layout of the flat gradient.
    const grad = new Float32Array(online.size);
    const specs = online.specs;
    for (let i = 0; i < specs.length; i++) grad.set(out[gradNames[i]!]!, online.offsets[i]!);
    const inputGrads = gradNames.slice(specs.length).map((name) => out[name]!);
    const result: DenseResult = { loss: out[lossName!]![0]!, scale, grad, inputGrads };
    if (wantScores) result.scores = await this.criticScores(out[qName!]!, keys, positiveIds, scale, ctx);
    return result;
  }

  private clickLogTrainingSession(m: ClickLogModel, b: number, k: number) {
    const { embeddingDim: e, hiddenDim: h, outputDim: d, learnableTemperature } = m.options;
    const shape = { batch: b, bank: k, embeddingDim: e, hiddenDim: h, outputDim: d, learnableTemperature };
    return this.session(`train-clicklog-${JSON.stringify(shape)}`, () => {
      const g = clicklogTrainingGraph(shape);
      return { model: g.model, output: '', outputs: g.outputs };
    });
  }

  private imageTrainingSession(m: ImageModel, b: number, k: number) {
    const shape = this.imageShape(m, b);
    const full = { ...shape, bank: k, learnableTemperature: m.options.learnableTemperature };
    return this.session(`train-images-${JSON.stringify(full)}`, () => {
      const g = imageTrainingGraph(full);
      return { model: g.model, output: '', outputs: g.outputs };
    });
  }

  private imageInputs(m: ImageModel, batch: ImageBatch): Record<string, Tensor32> {
    const n = batch.indices.length;
    const [r, w] = m.mapShape;
    return { patches: { data: m.patches(batch.query, n), dims: [n * r * w, 25] } };
  }

  private async imageKeys(m: ImageModel, batch: ImageBatch): Promise<Float32Array> {
    const n = batch.indices.length;
    const shape = this.imageShape(m, n);
    const built = await this.session(`embed-images-${JSON.stringify(shape)}`, () => {
      const g = imageEmbedGraph(shape);
      return { model: g.model, output: g.output, outputs: g.params };
    });
    const [r, w] = m.mapShape;
    const params = paramFeeds(m.key);
    // The key encoder's copy of the logit scale is no input of the forward graph.
    const feeds: Record<string, Tensor32> = Object.fromEntries(built.outputs!.map((name) => [name, params[name]!]));
    const out = await built.session.run({ ...feeds, patches: { data: m.patches(batch.key, n), dims: [n * r * w, 25] } });
    return out[built.output]!;
  }

  private imageShape(m: ImageModel, batch: number) {
    const [mapRows, mapCols] = m.mapShape;
    const { channels, hiddenDim, outputDim } = m.options;
    return { batch, mapRows, mapCols, channels, hiddenDim, outputDim };
  }

  /** Scores against every bank slot in one graph of the bank's full shape, then the filled slots' columns. */
  private async criticScores(q: Float32Array, kpos: Float32Array, positiveIds: Int32Array, scale: number, ctx: DenseContext): Promise<Float32Array> {
    const { bank } = ctx;
    const [b, k, d, filled] = [positiveIds.length, bank.capacity, bank.dim, bank.filled];
    const graph = await this.session(`critic-${b}-${k}-${d}`, () => criticScoresGraph(b, k, d));
    const corr = (id: number) => (ctx.logQ !== null && id >= 0 ? -ctx.logQ[id]! : 0);
    const out = await graph.session.run({
      q: { data: q, dims: [b, d] },
      kpos: { data: kpos, dims: [b, d] },
      bank: { data: bank.keys, dims: [k, d] },
      pos_bias: { data: Float32Array.from(positiveIds, corr), dims: [b, 1] },
      neg_bias: { data: Float32Array.from(bank.ids, (id, slot) => (slot < filled ? corr(id) : 0)), dims: [1, k] },
      scale: { data: Float32Array.of(scale), dims: [] },
    });
    const all = out[graph.output]!;
    if (filled === k) return all;
    const scores = new Float32Array(b * (filled + 1));
    for (let i = 0; i < b; i++) scores.set(all.subarray(i * (k + 1), i * (k + 1) + filled + 1), i * (filled + 1));
    return scores;
  }

  /** The session of the graph `key` with its output names, the graph built on first use. */
  private async session(key: string, build: () => BuiltGraph): Promise<{ session: GraphSession } & BuiltGraph> {
    let entry = this.sessions.get(key);
    if (entry === undefined) {
      const graph = build();
      // ONNX Runtime's native library loads with the first graph, so a tfjs run never loads it.
      const opened = import('./graph-session.js').then(({ GraphSession }) =>
        GraphSession.open(graph.model, key, { device: this.device, threads: this.threads }),
      );
      entry = { ...graph, session: opened };
      this.sessions.set(key, entry);
    }
    return { ...entry, session: await entry.session };
  }
}

/** A graph's model bytes and the names of its outputs. */
interface BuiltGraph {
  model: Uint8Array;
  /** The output, for a graph of one. */
  output: string;
  /** Every output in order, for a graph of several. */
  outputs?: string[];
}

/** The click-log model as the graphs know it (the image model is the other one they know). */
function clickLogModel(model: ContrastiveModel<unknown>): ClickLogModel {
  if (!(model instanceof ClickLogModel)) throw new UserError('--engine onnx: this model is not built as graphs; use --engine tfjs');
  return model;
}

/** The click-log graph's batch inputs: the pooled query and site rows and the site→query mask. */
function clickLogInputs(m: ClickLogModel, batch: ClickBatch): Record<string, Tensor32> {
  const [pooledQ, pooledS] = m.pooledRows(batch);
  const b = batch.sites.length;
  const e = m.options.embeddingDim;
  return {
    pooled_q: { data: pooledQ, dims: [b, e] },
    pooled_s: { data: pooledS, dims: [b, e] },
    site_mask: { data: siteTermMask(batch, m.options.siteTermGroup), dims: [b, b] },
  };
}

/** Every parameter of `params` as a graph input named after it (views, no copies). */
function paramFeeds(params: ParamSet): Record<string, Tensor32> {
  return Object.fromEntries(params.specs.map((spec) => [spec.name, { data: paramValues(params, spec.name), dims: spec.shape }]));
}

function paramValues(params: ParamSet, name: string): Float32Array {
  const i = params.specs.findIndex((s) => s.name === name);
  const spec = params.specs[i]!;
  const off = params.offsets[i]!;
  return params.values.subarray(off, off + spec.shape.reduce((n, x) => n * x, 1));
}
