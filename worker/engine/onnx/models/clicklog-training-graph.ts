import { gradients } from '../autodiff.js';
import { GraphBuilder, type Value } from '../graph-builder.js';
import { infonceBankLoss } from '../losses/infonce-bank-loss.js';
import { add } from '../ops/add.js';
import { exp } from '../ops/exp.js';
import { identity } from '../ops/identity.js';
import { reshape } from '../ops/reshape.js';
import { encodeModel } from '../onnx-model.js';
import { mlpEmbed } from './mlp-embed.js';

/** The shapes one click-log training graph is built for (a graph per shape, built once). */
export interface ClicklogGraphShape {
  batch: number;
  /** Keys in the bank (K). */
  bank: number;
  embeddingDim: number;
  hiddenDim: number;
  outputDim: number;
  /** The logit scale is the parameter `logit_scale` (log 1/τ) instead of the input `scale`. */
  learnableTemperature: boolean;
}

/** The names of a training graph's outputs after `loss` and `total`: one gradient per parameter, then the pooled inputs'. */
export interface ClicklogTrainingGraph {
  model: Uint8Array;
  /** Dense parameter names in the order of their gradient outputs. */
  params: string[];
  /**
   * Output names: the InfoNCE loss, the loss with the site→query term, the query embeddings (B×d, for
   * the critic scores), then d/d(param) for `params`, then d/d(pooled_q), d/d(pooled_s).
   */
  outputs: string[];
}

const LAYERS = 2;

/** Parameter names and shapes of the click-log model's dense part, in its ParamSet order. */
export function clicklogParams(s: ClicklogGraphShape): [string, number[]][] {
  const tower = (p: string): [string, number[]][] => [
    [`${p}.w0`, [s.embeddingDim, s.hiddenDim]],
    [`${p}.b0`, [s.hiddenDim]],
    [`${p}.w1`, [s.hiddenDim, s.outputDim]],
    [`${p}.b1`, [s.outputDim]],
  ];
  return [...tower('q'), ...(s.learnableTemperature ? ([['logit_scale', [1]]] as [string, number[]][]) : []), ...tower('s')];
}

/**
 * The forward and backward pass of the click-log model's InfoNCE step as one ONNX graph: the query
 * tower on the pooled query rows, InfoNCE of its embeddings against [momentum site keys; bank] with
 * the logit bias (logQ, masks), plus the site→query in-batch term of the online site tower, and the
 * gradients of their sum with respect to every dense parameter and to both pooled inputs (which the
 * sparse tables scatter to their rows). Inputs: pooled_q, pooled_s (B×e), keys (B×d, constant),
 * bank (K×d), bias (B×(B+K)), site_mask (B×B), scale (fixed temperature only), and the parameters.
 */
export function clicklogTrainingGraph(s: ClicklogGraphShape): ClicklogTrainingGraph {
  const { batch: b, bank: k, embeddingDim: e, outputDim: d } = s;
  const g = new GraphBuilder(`clicklog-infonce-b${b}-k${k}-e${e}-h${s.hiddenDim}-d${d}${s.learnableTemperature ? '-learnable' : ''}`);
  const pooledQ = g.input('pooled_q', [b, e]);
  const pooledS = g.input('pooled_s', [b, e]);
  const keys = g.input('keys', [b, d]);
  const bank = g.input('bank', [k, d]);
  const bias = g.input('bias', [b, b + k]);
  const siteMask = g.input('site_mask', [b, b]);
  const fixedScale = s.learnableTemperature ? null : g.input('scale', []);
  const paramSpecs = clicklogParams(s);
  const params = new Map(paramSpecs.map(([name, shape]) => [name, g.input(name, shape)] as const));
  // CLIP's parameterisation: the scale is exp of the learned log scale.
  const scale = fixedScale ?? exp(g, reshape(g, params.get('logit_scale')!, []));

  const q = mlpEmbed(g, pooledQ, params, 'q', LAYERS);
  const loss = infonceBankLoss(g, { q, kpos: keys, bank, scale, bias });
  const site = mlpEmbed(g, pooledS, params, 's', LAYERS);
  // Site→query: the site rows are the anchors and the query embeddings their positives, in-batch only.
  const total = add(g, loss, infonceBankLoss(g, { q: site, kpos: q, bank: null, scale, bias: siteMask }));
  const wrt: Value[] = [...params.values(), pooledQ, pooledS];
  const grads = gradients(g, total, wrt);
  const outputs = [loss, total, q, ...grads].map((v) => identity(g, v));
  for (const o of outputs) g.output(o);
  return { model: encodeModel(g), params: paramSpecs.map(([name]) => name), outputs: outputs.map((o) => o.name) };
}
