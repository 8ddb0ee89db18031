import { gradients } from '../autodiff.js';
import { GraphBuilder, type Value } from '../graph-builder.js';
import { infonceBankLoss } from '../losses/infonce-bank-loss.js';
import { add } from '../ops/add.js';
import { exp } from '../ops/exp.js';
import { reshape } from '../ops/reshape.js';
import { encodeModel } from '../onnx-model.js';
import { mlpEmbed } from './mlp-embed.js';
import { objectiveHead, type ObjectiveHeadShape } from './objective-head.js';
import { type TrainingGraph, trainingGraphName, trainingOutputs } from './training-graph.js';

/** The shapes one click-log training graph is built for (a graph per shape, built once). */
export interface ClicklogGraphShape {
  batch: number;
  embeddingDim: number;
  hiddenDim: number;
  outputDim: number;
  /** The logit scale is the parameter `logit_scale` (log 1/τ) instead of the input `scale`. */
  learnableTemperature: boolean;
  head: ObjectiveHeadShape;
}

const LAYERS = 2;

/** Parameter names and shapes of the click-log model's dense part, in its ParamSet order. */
export function clicklogParams(s: Omit<ClicklogGraphShape, 'batch' | 'head'>): [string, number[]][] {
  const tower = (p: string): [string, number[]][] => [
    [`${p}.w0`, [s.embeddingDim, s.hiddenDim]],
    [`${p}.b0`, [s.hiddenDim]],
    [`${p}.w1`, [s.hiddenDim, s.outputDim]],
    [`${p}.b1`, [s.outputDim]],
  ];
  return [...tower('q'), ...(s.learnableTemperature ? ([['logit_scale', [1]]] as [string, number[]][]) : []), ...tower('s')];
}

/**
 * The forward and backward pass of the click-log model's step as one ONNX graph: the query tower on
 * the pooled query rows, the objective of its embeddings against the momentum site keys and the bank
 * (models/objective-head.ts), plus the site→query in-batch InfoNCE term of the online site tower, and
 * the gradients of their sum with respect to every dense parameter and to both pooled inputs (which
 * the sparse tables scatter to their rows). Inputs: pooled_q, pooled_s (B×e), keys (B×d, constant),
 * site_mask (B×B), scale (fixed temperature only), the parameters, and the head's inputs.
 */
export function clicklogTrainingGraph(s: ClicklogGraphShape): TrainingGraph {
  const { batch: b, embeddingDim: e, outputDim: d } = s;
  const g = new GraphBuilder(trainingGraphName('clicklog', `b${b}-e${e}-h${s.hiddenDim}-d${d}`, s.learnableTemperature, s.head));
  const pooledQ = g.input('pooled_q', [b, e]);
  const pooledS = g.input('pooled_s', [b, e]);
  const keys = g.input('keys', [b, d]);
  const siteMask = g.input('site_mask', [b, b]);
  const fixedScale = s.learnableTemperature ? null : g.input('scale', []);
  const paramSpecs = clicklogParams(s);
  const params = new Map(paramSpecs.map(([name, shape]) => [name, g.input(name, shape)] as const));
  // CLIP's parameterisation: the scale is exp of the learned log scale.
  const scale = fixedScale ?? exp(g, reshape(g, params.get('logit_scale')!, []));

  const q = mlpEmbed(g, pooledQ, params, 'q', LAYERS);
  const head = objectiveHead(g, q, keys, scale, s.head);
  const site = mlpEmbed(g, pooledS, params, 's', LAYERS);
  // Site→query: the site rows are the anchors and the query embeddings their positives, in-batch only.
  const total = add(g, head.trained, infonceBankLoss(g, { q: site, kpos: q, scale, batchBias: siteMask, bankLogits: null }));
  const wrt: Value[] = [...params.values(), pooledQ, pooledS];
  const outputs = trainingOutputs(g, head, gradients(g, total, wrt), [...params.keys(), 'pooled_q', 'pooled_s']);
  return { model: encodeModel(g), params: paramSpecs.map(([name]) => name), inputGrads: ['grad.pooled_q', 'grad.pooled_s'], outputs };
}
