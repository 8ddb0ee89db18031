import * as tf from '@tensorflow/tfjs-core';
import { l2Normalize, linear } from '../../common/linear.js';
import type { ParamSpec } from './param-set.js';

/** Parameter specs of an MLP with layer sizes [in, h1, ..., out]: `${prefix}.w${i}` and `${prefix}.b${i}`. */
export function mlpSpecs(prefix: string, sizes: readonly number[]): ParamSpec[] {
  const specs: ParamSpec[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    specs.push({ name: `${prefix}.w${i}`, shape: [sizes[i]!, sizes[i + 1]!] });
    specs.push({ name: `${prefix}.b${i}`, shape: [sizes[i + 1]!] });
  }
  return specs;
}

/** ReLU MLP: ReLU after every layer but the last; `from` > 0 starts at that layer (x is its input). */
export function mlp(x: tf.Tensor2D, params: ReadonlyMap<string, tf.Tensor>, prefix: string, layers: number, from = 0): tf.Tensor2D {
  let h = x;
  for (let i = from; i < layers; i++) {
    h = tf.add(linear(h, params.get(`${prefix}.w${i}`) as tf.Tensor2D), params.get(`${prefix}.b${i}`)!) as tf.Tensor2D;
    if (i + 1 < layers) h = tf.relu(h);
  }
  return h;
}

/** ReLU MLP whose output rows are L2-normalised (embeddings live on the unit sphere; docs/architecture.md §1). */
export function mlpEmbed(x: tf.Tensor2D, params: ReadonlyMap<string, tf.Tensor>, prefix: string, layers: number): tf.Tensor2D {
  return l2Normalize(mlp(x, params, prefix, layers));
}
