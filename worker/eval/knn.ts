import * as tf from '@tensorflow/tfjs-core';
import { TimeSlicer } from '../../common/time-slicer.js';

/** Labels of one split, one per embedding row, in [0, classes). */
export type Labels = Uint8Array | Int32Array;

/** Inputs of the weighted kNN classifier (Wu et al. 2018, MoCo's kNN monitor). */
export interface KnnPredictOptions {
  /** Train (memory) embeddings, N·dim row-major; L2-normalised here, so any scale will do. */
  readonly trainEmb: Float32Array;
  /** Class of each train row. */
  readonly trainLabels: Labels;
  /** Test embeddings, M·dim row-major; L2-normalised here. */
  readonly testEmb: Float32Array;
  /** Embedding width. */
  readonly dim: number;
  /** Neighbours that vote (clipped to N); 200 as in InstDisc and MoCo. */
  readonly k?: number;
  /** Each neighbour votes exp(cosine / temperature) for its class; 0.07 as in InstDisc and MoCo. */
  readonly temperature?: number;
  /** Number of classes; labels must lie in [0, classes). */
  readonly classes: number;
  /** Upper bound on the bytes of one chunk's test×train similarity matrix (default 16 MiB). */
  readonly chunkBytes?: number;
}

/** Inputs of {@link knnTop1}: the classifier's inputs plus the true test labels. */
export interface KnnOptions extends KnnPredictOptions {
  /** True class of each test row. */
  readonly testLabels: Labels;
}

// A chunk is one stretch of work between yields to the event loop: 16 MiB of scores is a few tens of
// ms of matMul, far inside a cluster member's heartbeat timeout even on a loaded machine.
const DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024;

/**
 * Predicted class of every test row: cosine similarity to all train rows, the k most similar vote
 * exp(sim / temperature) for their class, and the class with the largest vote wins. Ties are
 * deterministic: among equally similar neighbours the lower train index is taken (tf.topk's order),
 * among equal votes the lower class.
 */
export async function knnPredict(opts: KnnPredictOptions): Promise<Int32Array> {
  const { trainEmb, trainLabels, testEmb, dim, classes } = opts;
  const temperature = opts.temperature ?? 0.07;
  const n = rowsOf(trainEmb, dim, 'trainEmb');
  const m = rowsOf(testEmb, dim, 'testEmb');
  if (!Number.isInteger(classes) || classes < 1) throw new RangeError(`knn: classes must be a positive integer, got ${classes}`);
  checkLabels(trainLabels, n, classes, 'trainLabels');
  if (!(temperature > 0 && Number.isFinite(temperature))) throw new RangeError(`knn: temperature must be > 0, got ${temperature}`);
  const kWanted = opts.k ?? 200;
  if (!Number.isInteger(kWanted) || kWanted < 1) throw new RangeError(`knn: k must be a positive integer, got ${kWanted}`);
  if (n === 0) throw new RangeError('knn: no train embeddings');
  const k = Math.min(kWanted, n);
  const chunkRows = Math.max(1, Math.floor((opts.chunkBytes ?? DEFAULT_CHUNK_BYTES) / (4 * n)));

  const predictions = new Int32Array(m);
  const votes = new Float64Array(classes);
  // Transposed once, so every chunk's similarities are a plain matMul (transposeB is ~10x slower on wasm).
  const trainT = tf.tidy(() => tf.transpose(l2Normalize(tf.tensor2d(trainEmb, [n, dim]))));
  try {
    const slicer = new TimeSlicer();
    for (let start = 0; start < m; start += chunkRows) {
      await slicer.maybeYield();
      const rows = Math.min(chunkRows, m - start);
      const [valuesT, indicesT] = tf.tidy(() => {
        const test = l2Normalize(tf.tensor2d(testEmb.subarray(start * dim, (start + rows) * dim), [rows, dim]));
        const { values, indices } = tf.topk(tf.matMul(test, trainT), k, true);
        return [values, indices];
      });
      // Read outside tidy: tidy walks a returned TypedArray element by element.
      const values = valuesT.dataSync();
      const indices = indicesT.dataSync();
      tf.dispose([valuesT, indicesT]);
      for (let r = 0; r < rows; r++) {
        votes.fill(0);
        const o = r * k;
        // Subtracting the best similarity leaves the argmax unchanged and keeps exp finite for tiny temperatures.
        const best = values[o]!;
        for (let j = o; j < o + k; j++) votes[trainLabels[indices[j]!]!]! += Math.exp((values[j]! - best) / temperature);
        let arg = 0;
        for (let c = 1; c < classes; c++) if (votes[c]! > votes[arg]!) arg = c;
        predictions[start + r] = arg;
      }
    }
  } finally {
    trainT.dispose();
  }
  return predictions;
}

/** Top-1 accuracy of the weighted kNN classifier ({@link knnPredict}) on the test split. */
export async function knnTop1(opts: KnnOptions): Promise<number> {
  const { testEmb, testLabels, dim } = opts;
  if (testLabels.length * dim !== testEmb.length) {
    throw new RangeError(`knn: ${testLabels.length} testLabels for ${testEmb.length} test values of dim ${dim}`);
  }
  if (testLabels.length === 0) throw new RangeError('knn: no test embeddings');
  const predictions = await knnPredict(opts);
  let correct = 0;
  for (let i = 0; i < predictions.length; i++) if (predictions[i] === testLabels[i]) correct++;
  return correct / predictions.length;
}

/**
 * The first `count` images (each `pixels` uint8 values) as float embeddings in [0, 1]: the raw-pixel
 * baseline that a learned encoder's kNN accuracy is compared with.
 */
export function rawPixelEmbeddings(images: Uint8Array, count: number, pixels: number): Float32Array {
  if (!Number.isInteger(count) || !Number.isInteger(pixels) || count < 0 || pixels < 1) {
    throw new RangeError(`rawPixelEmbeddings: bad count ${count} or pixels ${pixels}`);
  }
  if (images.length < count * pixels) {
    throw new RangeError(`rawPixelEmbeddings: ${images.length} bytes hold fewer than ${count} images of ${pixels} pixels`);
  }
  const out = new Float32Array(count * pixels);
  for (let i = 0; i < out.length; i++) out[i] = images[i]! / 255;
  return out;
}

/** Rows scaled to unit L2 norm; an all-zero row stays zero (similarity 0 to everything). */
function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.mul(x, tf.rsqrt(tf.maximum(tf.sum(tf.square(x), 1, true), 1e-24)));
}

/** Row count of an embedding matrix; NaN or Inf would make neighbours and votes silently wrong. */
function rowsOf(emb: Float32Array, dim: number, name: string): number {
  if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`knn: dim must be a positive integer, got ${dim}`);
  if (emb.length % dim !== 0) throw new RangeError(`knn: ${name} has ${emb.length} values, not a multiple of dim ${dim}`);
  for (let i = 0; i < emb.length; i++) {
    if (!Number.isFinite(emb[i]!)) throw new RangeError(`knn: ${name} row ${Math.floor(i / dim)} holds ${emb[i]}`);
  }
  return emb.length / dim;
}

/** Labels must index the vote array. */
function checkLabels(labels: Labels, n: number, classes: number, name: string): void {
  if (labels.length !== n) throw new RangeError(`knn: ${labels.length} ${name} for ${n} rows`);
  for (let i = 0; i < n; i++) {
    const c = labels[i]!;
    if (c < 0 || c >= classes) throw new RangeError(`knn: ${name}[${i}] = ${c} is outside [0, ${classes})`);
  }
}
