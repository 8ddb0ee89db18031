import { gradients } from '../autodiff.js';
import { GraphBuilder, type Value } from '../graph-builder.js';
import { infonceBankLoss } from '../losses/infonce-bank-loss.js';
import { add } from '../ops/add.js';
import { mul } from '../ops/mul.js';
import { reduceSum } from '../ops/reduce-sum.js';
import { exp } from '../ops/exp.js';
import { reshape } from '../ops/reshape.js';
import { encodeModel } from '../onnx-model.js';
import { mlpEmbed } from './mlp-embed.js';
import { type ObjectiveHead, objectiveHead, type ObjectiveHeadShape } from './objective-head.js';
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
  return clicklogGraph(s, trainingGraphName('clicklog', shapeName(s), s.learnableTemperature, s.head), (g, q, keys, scale) =>
    objectiveHead(g, q, keys, scale, s.head),
  );
}

/**
 * The towers' backward pass of a partitioned-bank step (Partial FC): the InfoNCE head was computed
 * outside the graph across the members (common/partitioned-infonce.ts), which hand back dL/dq as
 * the input `head_grad_q` (B×d) and, with a learned temperature, dL/dscale as `head_grad_scale`.
 * The graph differentiates <q, head_grad_q> + scale·head_grad_scale plus the site→query term, which
 * gives every parameter the gradient of the replicated step; its `loss` output is that surrogate, not
 * the objective. The other inputs are {@link clicklogTrainingGraph}'s without the head's.
 */
export function clicklogPartitionedGraph(s: Omit<ClicklogGraphShape, 'head'>): TrainingGraph {
  const name = `clicklog-partitioned-${shapeName(s)}${s.learnableTemperature ? '-learnable' : ''}`;
  return clicklogGraph(s, name, (g, q, _keys, scale) => {
    const [b, d] = q.shape as [number, number];
    let trained = reduceSum(g, mul(g, q, g.input('head_grad_q', [b, d])), [0, 1], false);
    if (s.learnableTemperature) trained = add(g, trained, mul(g, scale, g.input('head_grad_scale', [])));
    return { loss: trained, trained, outputs: [] };
  });
}

function shapeName(s: Omit<ClicklogGraphShape, 'head'>): string {
  return `b${s.batch}-e${s.embeddingDim}-h${s.hiddenDim}-d${s.outputDim}`;
}

/** The click-log step's graph around a head: both towers, the site→query term, the gradients. */
function clicklogGraph(
  s: Omit<ClicklogGraphShape, 'head'>,
  name: string,
  head: (g: GraphBuilder, q: Value, keys: Value, scale: Value) => ObjectiveHead,
): TrainingGraph {
  const { batch: b, embeddingDim: e, outputDim: d } = s;
  const g = new GraphBuilder(name);
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
  const built = head(g, q, keys, scale);
  const site = mlpEmbed(g, pooledS, params, 's', LAYERS);
  // Site→query: the site rows are the anchors and the query embeddings their positives, in-batch only.
  const total = add(g, built.trained, infonceBankLoss(g, { q: site, kpos: q, scale, batchBias: siteMask, bankLogits: null }));
  const wrt: Value[] = [...params.values(), pooledQ, pooledS];
  const outputs = trainingOutputs(g, built, gradients(g, total, wrt), [...params.keys(), 'pooled_q', 'pooled_s']);
  return { model: encodeModel(g), params: paramSpecs.map(([name]) => name), inputGrads: ['grad.pooled_q', 'grad.pooled_s'], outputs };
}
