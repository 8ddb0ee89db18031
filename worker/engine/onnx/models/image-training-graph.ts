import { gradients } from '../autodiff.js';
import { GraphBuilder, type Value } from '../graph-builder.js';
import { infonceBankLoss } from '../losses/infonce-bank-loss.js';
import { exp } from '../ops/exp.js';
import { identity } from '../ops/identity.js';
import { matMul } from '../ops/matmul.js';
import { relu } from '../ops/relu.js';
import { reshape } from '../ops/reshape.js';
import { transpose } from '../ops/transpose.js';
import { encodeModel } from '../onnx-model.js';
import { mlpEmbed } from './mlp-embed.js';

/** The shapes one image training graph is built for. */
export interface ImageGraphShape {
  batch: number;
  bank: number;
  /** Rows and columns of conv1's output map (im2col of the 5×5, stride-2 kernel). */
  mapRows: number;
  mapCols: number;
  /** Channels of conv1 (conv2 has twice as many). */
  channels: number;
  hiddenDim: number;
  outputDim: number;
  learnableTemperature: boolean;
}

/** What {@link imageTrainingGraph} builds: the model bytes, the parameter order of its gradients, and its output names. */
export interface ImageTrainingGraph {
  model: Uint8Array;
  params: string[];
  /** The InfoNCE loss, the query embeddings (B×d, for the critic scores), then d/d(param) in `params` order. */
  outputs: string[];
}

const KERNEL_AREA = 25;

/** Parameter names and shapes of worker/train/image-model.ts's dense part, in its ParamSet order. */
export function imageParams(s: ImageGraphShape): [string, number[]][] {
  const c = s.channels;
  const flat = (s.mapRows / 2) * (s.mapCols / 2) * 2 * c;
  return [
    ['c1.w', [KERNEL_AREA, c]],
    ['c2.w', [4 * c, 2 * c]],
    ['h.w0', [flat, s.hiddenDim]],
    ['h.b0', [s.hiddenDim]],
    ['h.w1', [s.hiddenDim, s.outputDim]],
    ['h.b1', [s.outputDim]],
    ...(s.learnableTemperature ? ([['logit_scale', [1]]] as [string, number[]][]) : []),
  ];
}

/**
 * The image model's InfoNCE step as one ONNX graph: conv1 as the im2col patches (an input: they need
 * no gradient) times its weights, conv2 as a space-to-depth of 2×2 blocks times its weights, the MLP
 * head to a unit vector, InfoNCE against [momentum keys of the other view; bank], and the gradient of
 * every dense parameter. Inputs: patches (B·rows·cols×25), keys (B×d), bank (K×d), bias (B×(B+K)),
 * scale (fixed temperature only), and the parameters.
 */
export function imageTrainingGraph(s: ImageGraphShape): ImageTrainingGraph {
  const { batch: b, bank: k, mapRows: r, mapCols: w, channels: c, outputDim: d } = s;
  const g = new GraphBuilder(`images-infonce-b${b}-k${k}-m${r}x${w}-c${c}-h${s.hiddenDim}-d${d}${s.learnableTemperature ? '-learnable' : ''}`);
  const patches = g.input('patches', [b * r * w, KERNEL_AREA]);
  const keys = g.input('keys', [b, d]);
  const bank = g.input('bank', [k, d]);
  const bias = g.input('bias', [b, b + k]);
  const fixedScale = s.learnableTemperature ? null : g.input('scale', []);
  const paramSpecs = imageParams(s);
  const params = new Map(paramSpecs.map(([name, shape]) => [name, g.input(name, shape)] as const));
  const scale = fixedScale ?? exp(g, reshape(g, params.get('logit_scale')!, []));

  const q = imageEncoder(g, patches, params, s);
  const loss = infonceBankLoss(g, { q, kpos: keys, bank, scale, bias });
  const grads = gradients(g, loss, [...params.values()] as Value[]);
  const outputs = [loss, q, ...grads].map((v) => identity(g, v));
  for (const o of outputs) g.output(o);
  return { model: encodeModel(g), params: paramSpecs.map(([name]) => name), outputs: outputs.map((o) => o.name) };
}

/** The image encoder of worker/train/image-model.ts on im2col patches: conv1, space-to-depth conv2, the MLP head to unit rows. */
function imageEncoder(g: GraphBuilder, patches: Value, params: ReadonlyMap<string, Value>, s: Omit<ImageGraphShape, 'bank' | 'learnableTemperature'>): Value {
  const { batch: b, mapRows: r, mapCols: w, channels: c } = s;
  const h1 = relu(g, matMul(g, patches, params.get('c1.w')!));
  // Space-to-depth of 2×2 blocks, as image-model.ts does it with 4-D reshapes and one transpose.
  const blocks = reshape(g, transpose(g, reshape(g, h1, [b * (r / 2), 2, w / 2, 2 * c]), [0, 2, 1, 3]), [(b * r * w) / 4, 4 * c]);
  const h2 = relu(g, matMul(g, blocks, params.get('c2.w')!));
  return mlpEmbed(g, reshape(g, h2, [b, (r / 2) * (w / 2) * 2 * c]), params, 'h', 2);
}

/**
 * The image encoder's forward alone (the momentum key encoder's keys): inputs `patches` and the
 * encoder's parameters (no logit scale), output the unit embeddings, whose name is returned.
 */
export function imageEmbedGraph(s: Omit<ImageGraphShape, 'bank' | 'learnableTemperature'>): { model: Uint8Array; output: string; params: string[] } {
  const g = new GraphBuilder(`images-embed-b${s.batch}-m${s.mapRows}x${s.mapCols}-c${s.channels}-h${s.hiddenDim}-d${s.outputDim}`);
  const patches = g.input('patches', [s.batch * s.mapRows * s.mapCols, KERNEL_AREA]);
  const specs = imageParams({ ...s, bank: 0, learnableTemperature: false });
  const params = new Map(specs.map(([name, shape]) => [name, g.input(name, shape)] as const));
  const embedding = identity(g, imageEncoder(g, patches, params, s));
  g.output(embedding);
  return { model: encodeModel(g), output: embedding.name, params: specs.map(([name]) => name) };
}
