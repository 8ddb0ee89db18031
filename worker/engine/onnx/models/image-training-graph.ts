import { gradients } from '../autodiff.js';
import { GraphBuilder, type Value } from '../graph-builder.js';
import { exp } from '../ops/exp.js';
import { identity } from '../ops/identity.js';
import { matMul } from '../ops/matmul.js';
import { relu } from '../ops/relu.js';
import { reshape } from '../ops/reshape.js';
import { transpose } from '../ops/transpose.js';
import { encodeModel } from '../onnx-model.js';
import { CONV1 } from '../../../train/image-model.js';
import { im2colGraph } from './im2col-graph.js';
import { mlpEmbed } from './mlp-embed.js';
import { objectiveHead, type ObjectiveHeadShape } from './objective-head.js';
import { type TrainingGraph, trainingGraphName, trainingOutputs } from './training-graph.js';

/** The shapes of the image encoder's graphs. */
export interface ImageEncoderShape {
  batch: number;
  /** Rows and columns of the input images. */
  imageRows: number;
  imageCols: number;
  /** Rows and columns of conv1's output map. */
  mapRows: number;
  mapCols: number;
  /** Channels of conv1 (conv2 has twice as many). */
  channels: number;
  hiddenDim: number;
  outputDim: number;
}

/** The shapes one image training graph is built for. */
export interface ImageGraphShape extends ImageEncoderShape {
  learnableTemperature: boolean;
  head: ObjectiveHeadShape;
}

/** Parameter names and shapes of worker/train/image-model.ts's dense part, in its ParamSet order. */
export function imageParams(s: ImageEncoderShape & { learnableTemperature: boolean }): [string, number[]][] {
  const c = s.channels;
  const flat = (s.mapRows / 2) * (s.mapCols / 2) * 2 * c;
  return [
    ['c1.w', [CONV1.kernel * CONV1.kernel, c]],
    ['c2.w', [4 * c, 2 * c]],
    ['h.w0', [flat, s.hiddenDim]],
    ['h.b0', [s.hiddenDim]],
    ['h.w1', [s.hiddenDim, s.outputDim]],
    ['h.b1', [s.outputDim]],
    ...(s.learnableTemperature ? ([['logit_scale', [1]]] as [string, number[]][]) : []),
  ];
}

/**
 * The image model's step as one ONNX graph: conv1 as the im2col patches of the images (gathered in
 * the graph: they need no gradient) times its weights, conv2 as a space-to-depth of 2×2 blocks times
 * its weights, the MLP head to a unit vector, the objective against the momentum keys of the other
 * view and the bank (models/objective-head.ts), and the gradient of every dense parameter. Inputs:
 * images (B × rows·cols), keys (B×d), scale (fixed temperature only), the parameters, and the head's.
 */
export function imageTrainingGraph(s: ImageGraphShape): TrainingGraph {
  const { batch: b, mapRows: r, mapCols: w, channels: c, outputDim: d } = s;
  const g = new GraphBuilder(trainingGraphName('images', `b${b}-m${r}x${w}-c${c}-h${s.hiddenDim}-d${d}`, s.learnableTemperature, s.head));
  const images = g.input('images', [b, s.imageRows * s.imageCols]);
  const keys = g.input('keys', [b, d]);
  const fixedScale = s.learnableTemperature ? null : g.input('scale', []);
  const paramSpecs = imageParams(s);
  const params = new Map(paramSpecs.map(([name, shape]) => [name, g.input(name, shape)] as const));
  const scale = fixedScale ?? exp(g, reshape(g, params.get('logit_scale')!, []));

  const q = imageEncoder(g, images, params, s);
  const head = objectiveHead(g, q, keys, scale, s.head);
  const outputs = trainingOutputs(g, head, gradients(g, head.trained, [...params.values()] as Value[]), [...params.keys()]);
  return { model: encodeModel(g), params: paramSpecs.map(([name]) => name), inputGrads: [], outputs };
}

/** The image encoder of worker/train/image-model.ts: conv1 on im2col patches, space-to-depth conv2, the MLP head to unit rows. */
function imageEncoder(g: GraphBuilder, images: Value, params: ReadonlyMap<string, Value>, s: ImageEncoderShape): Value {
  const { batch: b, mapRows: r, mapCols: w, channels: c } = s;
  const patches = im2colGraph(g, images, { rows: s.imageRows, cols: s.imageCols, ...CONV1 });
  const h1 = relu(g, matMul(g, patches, params.get('c1.w')!));
  // Space-to-depth of 2×2 blocks, as image-model.ts does it with 4-D reshapes and one transpose.
  const blocks = reshape(g, transpose(g, reshape(g, h1, [b * (r / 2), 2, w / 2, 2 * c]), [0, 2, 1, 3]), [(b * r * w) / 4, 4 * c]);
  const h2 = relu(g, matMul(g, blocks, params.get('c2.w')!));
  return mlpEmbed(g, reshape(g, h2, [b, (r / 2) * (w / 2) * 2 * c]), params, 'h', 2);
}

/**
 * The image encoder's forward alone (the momentum key encoder's keys): inputs `images` and the
 * encoder's parameters (no logit scale), output the unit embeddings, whose name is returned.
 */
export function imageEmbedGraph(s: ImageEncoderShape): { model: Uint8Array; output: string; params: string[] } {
  const g = new GraphBuilder(`images-embed-b${s.batch}-m${s.mapRows}x${s.mapCols}-c${s.channels}-h${s.hiddenDim}-d${s.outputDim}`);
  const images = g.input('images', [s.batch, s.imageRows * s.imageCols]);
  const specs = imageParams({ ...s, learnableTemperature: false });
  const params = new Map(specs.map(([name, shape]) => [name, g.input(name, shape)] as const));
  const embedding = identity(g, imageEncoder(g, images, params, s));
  g.output(embedding);
  return { model: encodeModel(g), output: embedding.name, params: specs.map(([name]) => name) };
}
