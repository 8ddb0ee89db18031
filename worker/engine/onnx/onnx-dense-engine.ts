import { availableParallelism } from 'node:os';
import { UserError } from '../../../common/user-error.js';
import { logitBias } from '../../bank/logit-bias.js';
import type { ParamSet } from '../../model/param-set.js';
import { ClickLogModel, siteTermMask } from '../../train/clicklog-model.js';
import type { ContrastiveModel } from '../../train/contrastive-model.js';
import { LOGIT_SCALE } from '../../train/contrastive-step.js';
import type { DenseContext, DenseEngine, DenseResult } from '../../train/dense-engine.js';
import { GraphSession, type OnnxDevice, type Tensor32 } from './graph-session.js';
import { clicklogTrainingGraph } from './models/clicklog-training-graph.js';
import { criticScoresGraph } from './models/critic-scores-graph.js';
import { towerEmbedGraph } from './models/embed-graph.js';

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
 * session. The graphs so far cover the click-log model with the InfoNCE objective; anything else
 * is one line naming `--engine tfjs`.
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
    const m = clickLogModel(model);
    const pooled = m.pooledKeyRows(batch as never, step);
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
    const m = clickLogModel(model);
    if (ctx.objective !== 'infonce') throw new UserError(`--engine onnx: the ${ctx.objective} objective is not built as a graph yet; use --engine tfjs`);
    const clickBatch = batch as never;
    const [pooledQ, pooledS] = m.pooledRows(clickBatch);
    const { embeddingDim: e, hiddenDim: h, outputDim: d, learnableTemperature } = m.options;
    const b = positiveIds.length;
    const k = ctx.bank.capacity;
    const shape = { batch: b, bank: k, embeddingDim: e, hiddenDim: h, outputDim: d, learnableTemperature };
    const train = await this.session(`train-clicklog-${JSON.stringify(shape)}`, () => {
      const g = clicklogTrainingGraph(shape);
      return { model: g.model, output: '', outputs: g.outputs };
    });
    const bias = logitBias(ctx.bank, { positiveIds, logQ: ctx.logQ, inBatchNegatives: ctx.inBatchNegatives, maskAccidentalHits: ctx.maskAccidentalHits });
    const scale = learnableTemperature ? Math.fround(Math.exp(paramValues(m.online, LOGIT_SCALE)[0]!)) : ctx.fixedScale;
    const out = await train.session.run({
      pooled_q: { data: pooledQ, dims: [b, e] },
      pooled_s: { data: pooledS, dims: [b, e] },
      keys: { data: keys, dims: [b, d] },
      bank: { data: ctx.bank.keys, dims: [k, d] },
      bias: { data: bias, dims: [b, b + k] },
      site_mask: { data: siteTermMask(clickBatch, m.options.siteTermGroup), dims: [b, b] },
      ...(learnableTemperature ? {} : { scale: { data: Float32Array.of(ctx.fixedScale), dims: [] } }),
      ...paramFeeds(m.online),
    });
    const [lossName, , qName, ...gradNames] = train.outputs!;
    // The gradients come in ParamSet order, which is also the layout of the flat gradient.
    const grad = new Float32Array(m.online.size);
    const specs = m.online.specs;
    for (let i = 0; i < specs.length; i++) grad.set(out[gradNames[i]!]!, m.online.offsets[i]!);
    const inputGrads = gradNames.slice(specs.length).map((name) => out[name]!);
    const result: DenseResult = { loss: out[lossName!]![0]!, scale, grad, inputGrads };
    if (wantScores) result.scores = await this.criticScores(out[qName!]!, keys, positiveIds, scale, ctx);
    return result;
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
      entry = { ...graph, session: GraphSession.open(graph.model, key, { device: this.device, threads: this.threads }) };
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

/** The model as the graphs know it, or one line saying what to use instead. */
function clickLogModel(model: ContrastiveModel<unknown>): ClickLogModel {
  if (!(model instanceof ClickLogModel)) throw new UserError('--engine onnx: only the click-log model is built as graphs yet; use --engine tfjs for images');
  return model;
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
