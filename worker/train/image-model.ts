import * as tf from '@tensorflow/tfjs-core';
import { TimeSlicer } from '../../common/time-slicer.js';
import { linear, linearFixedInput } from '../../common/linear.js';
import { Rng } from '../../common/random.js';
import { heldBytes, type MemoryBytes } from '../../common/memory-parts.js';
import { im2col } from '../image/im2col.js';
import { mlpEmbed, mlpSpecs } from '../model/mlp.js';
import { ParamSet, type ParamSpec } from '../model/param-set.js';
import { emaUpdate } from '../optim/ema.js';
import type { ContrastiveModel, EncodedBatch } from './contrastive-model.js';
import { LOGIT_SCALE } from './logit-scale.js';

/** A batch of images as two augmented views (MoCo's query and key views). */
export interface ImageBatch {
  indices: Int32Array;
  query: Float32Array;
  key: Float32Array;
}

/** Encoder shape and MoCo settings. */
export interface ImageModelOptions {
  rows: number;
  cols: number;
  /** Channels of the first conv layer (the second has twice as many). */
  channels: number;
  hiddenDim: number;
  outputDim: number;
  momentum: number;
  initialScale: number;
  learnableTemperature: boolean;
  seed: number;
}

/** conv1's geometry: 5×5 kernels, stride 2, 2 pixels of zero padding (an engine's im2col follows it). */
export const CONV1 = { kernel: 5, stride: 2, pad: 2 } as const;
const { kernel: KERNEL, stride: STRIDE, pad: PAD } = CONV1;

/**
 * A small conv net that trains on the wasm backend, which has no Conv2DBackpropFilter: conv1 (5×5,
 * stride 2) is im2col done in JS on the input — which needs no gradient — times a weight matrix;
 * conv2 (2×2, stride 2) is a space-to-depth reshape times a weight matrix. Every weight gradient is
 * then a plain matMul. Then an MLP head to a unit vector; the key encoder is its momentum copy.
 */
export class ImageModel implements ContrastiveModel<ImageBatch> {
  readonly online: ParamSet;
  readonly key: ParamSet;
  readonly dim: number;
  readonly trainsPositives = false;
  /** Images carry no item identity: every positive id is -1. */
  readonly itemCount = 0;
  private readonly outRows: number;
  private readonly outCols: number;

  constructor(readonly options: ImageModelOptions) {
    const c = options.channels;
    this.outRows = Math.floor((options.rows + 2 * PAD - KERNEL) / STRIDE) + 1;
    this.outCols = Math.floor((options.cols + 2 * PAD - KERNEL) / STRIDE) + 1;
    if (this.outRows % 2 !== 0 || this.outCols % 2 !== 0) {
      throw new RangeError(`images of ${options.rows}×${options.cols} give an odd conv1 map; use sizes ≡ 0 mod 4`);
    }
    const flat = (this.outRows / 2) * (this.outCols / 2) * 2 * c;
    const specs: ParamSpec[] = [
      // Conv layers carry no bias: its gradient, a column sum over B·196 rows, cost more than the conv.
      { name: 'c1.w', shape: [KERNEL * KERNEL, c] },
      { name: 'c2.w', shape: [4 * c, 2 * c] },
      ...mlpSpecs('h', [flat, options.hiddenDim, options.outputDim]),
    ];
    if (options.learnableTemperature) specs.push({ name: LOGIT_SCALE, shape: [1] });
    this.online = ParamSet.glorot(specs, new Rng(options.seed));
    if (options.learnableTemperature) this.online.values[this.online.offsets[specs.length - 1]!] = Math.log(options.initialScale);
    this.key = this.online.clone();
    this.dim = options.outputDim;
  }

  /** Rows and columns of conv1's output map. */
  get mapShape(): [number, number] {
    return [this.outRows, this.outCols];
  }

  /** conv1's input: the 5×5 patches of n images (im2col in JS, which needs no gradient), n·rows·cols × 25. */
  patches(images: Float32Array, n: number): Float32Array {
    const { rows, cols } = this.options;
    return im2col(images, n, rows, cols, KERNEL, STRIDE, PAD).data.subarray(0, n * this.outRows * this.outCols * KERNEL * KERNEL);
  }

  /** Unit embeddings of n images (pixels already scaled), built from the given parameter tensors. */
  forward(params: ReadonlyMap<string, tf.Tensor>, images: Float32Array, n: number): tf.Tensor2D {
    const { channels: c } = this.options;
    const patches = { data: this.patches(images, n) };
    return tf.tidy(() => {
      const x = tf.tensor2d(patches.data, [n * this.outRows * this.outCols, KERNEL * KERNEL]);
      const h1 = tf.relu(linearFixedInput(x, params.get('c1.w') as tf.Tensor2D));
      // Space-to-depth of 2×2 blocks with 4-D reshapes/transposes only (wasm's transpose is rank ≤ 4 friendly).
      const blocks = tf.reshape(tf.transpose(tf.reshape(h1, [n * (this.outRows / 2), 2, this.outCols / 2, 2 * c]), [0, 2, 1, 3]), [-1, 4 * c]) as tf.Tensor2D;
      const h2 = tf.relu(linear(blocks, params.get('c2.w') as tf.Tensor2D));
      return mlpEmbed(tf.reshape(h2, [n, -1]) as tf.Tensor2D, params, 'h', 2);
    });
  }

  /** Embeddings of many images with the online encoder, in chunks (evaluation), n×d. */
  async embed(images: Float32Array, n: number): Promise<Float32Array> {
    const px = this.options.rows * this.options.cols;
    const out = new Float32Array(n * this.dim);
    const params = this.online.tensors();
    const slicer = new TimeSlicer();
    for (let start = 0; start < n; start += 512) {
      await slicer.maybeYield();
      const m = Math.min(512, n - start);
      const e = this.forward(params, images.subarray(start * px, (start + m) * px), m);
      out.set(e.dataSync() as Float32Array, start * this.dim);
      e.dispose();
    }
    tf.dispose([...params.values()]);
    return out;
  }

  momentumKeys(batch: ImageBatch): Float32Array {
    const params = this.key.tensors();
    const k = this.forward(params, batch.key, batch.indices.length);
    const out = k.dataSync() as Float32Array;
    tf.dispose([k, ...params.values()]);
    return out;
  }

  positiveIds(batch: ImageBatch): Int32Array {
    return new Int32Array(batch.indices.length).fill(-1);
  }

  sparseInputs(): tf.Tensor2D[] {
    return [];
  }

  /** MoCo: the positive is the momentum key of the other view, a constant. */
  encode(params: ReadonlyMap<string, tf.Tensor>, _inputs: tf.Tensor2D[], keys: tf.Tensor2D, batch: ImageBatch): EncodedBatch {
    return { q: this.forward(params, batch.query, batch.indices.length), kpos: keys };
  }

  auxiliaryLoss(): null {
    return null;
  }

  sparseRowGrads(): [] {
    return [];
  }

  applySparse(): void {}

  momentumUpdate(): void {
    emaUpdate(this.key.values, this.online.values, this.options.momentum);
  }

  memory(): Pick<MemoryBytes, 'tables' | 'optimizer' | 'dense'> {
    return { tables: 0, optimizer: 0, dense: heldBytes([this.online, this.key]) };
  }
}
