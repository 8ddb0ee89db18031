import type { CheckpointArray } from '../../common/checkpoint-file.js';
import type { Config } from '../../common/config/mod.js';
import { UserError } from '../../common/user-error.js';
import { heldBytes } from '../../common/memory-parts.js';
import { Rng } from '../../common/random.js';
import { readImageDataset, type ImageDataset } from '../data/idx-reader.js';
import { knnTop1, rawPixelEmbeddings } from '../eval/knn.js';
import { twoViews } from '../image/augment.js';
import { ExampleOrder } from './example-order.js';
import { ImageModel, type ImageBatch } from './image-model.js';
import type { TrainingTask } from './training-task.js';

/** MoCo on an IDX image data set (Fashion-MNIST layout: train-* and t10k-* files in one directory). */
export class ImageTask implements TrainingTask<ImageBatch> {
  readonly model: ImageModel;
  readonly description: string;
  readonly logQ = null;
  readonly trueMi = null;
  readonly skipped: Record<string, number> = {};
  readonly order: ExampleOrder;

  private constructor(
    readonly train: ImageDataset,
    readonly test: ImageDataset,
    readonly config: Config,
  ) {
    const im = config.images;
    this.model = new ImageModel({
      rows: train.rows,
      cols: train.cols,
      channels: im.channels,
      hiddenDim: im.hidden_dim,
      outputDim: im.output_dim,
      momentum: config.bank.momentum,
      initialScale: 1 / config.temperature.value,
      learnableTemperature: config.temperature.learnable,
      seed: config.seed,
    });
    const epochSize = imageEpochSize(config, train.count);
    this.order = new ExampleOrder(epochSize, config.seed);
    this.description = `images ${config.data}: ${epochSize} training images of ${train.rows}×${train.cols}, ${test.count} test images`;
  }

  static async load(config: Config): Promise<ImageTask> {
    const train = await readImageDataset(config.data!, 'train');
    const test = await readImageDataset(config.data!, 'test');
    if (train.rows !== test.rows || train.cols !== test.cols) throw new UserError(`${config.data}: train and test images differ in size`);
    for (const [split, set] of [
      ['training', train],
      ['test', test],
    ] as const) {
      if (set.count === 0) throw new UserError(`${config.data}: the ${split} images file holds no images`);
    }
    try {
      return new ImageTask(train, test, config);
    } catch (err) {
      // The model refuses image sizes its conv layers cannot take.
      if (err instanceof RangeError) throw new UserError(`${config.data}: ${err.message}`);
      throw err;
    }
  }

  batchAt(start: number, count: number): ImageBatch {
    const indices = this.order.slice(start, count);
    // Augmentation randomness is a function of the stream position, so a resumed run, or the same
    // positions on another worker, sees the same views.
    const rng = new Rng((Math.imul(this.config.seed, 0x9e3779b1) + Math.imul(start, 0x85ebca6b)) >>> 0);
    const v = twoViews(this.train.images, indices, this.train.rows, this.train.cols, this.config.images.augment, rng);
    return { indices, query: v.query, key: v.key };
  }

  /** k-NN over the whole reference set: rank 0 evaluates alone. */
  readonly sharedEvaluation = false;

  async evaluate(): Promise<Record<string, number | null>> {
    const e = this.config.eval;
    const px = this.train.rows * this.train.cols;
    const nTrain = Math.min(e.knn_train, this.train.count);
    const nTest = Math.min(e.knn_test, this.test.count);
    const trainPx = rawPixelEmbeddings(this.train.images, nTrain, px);
    const testPx = rawPixelEmbeddings(this.test.images, nTest, px);
    const knn = (trainEmb: Float32Array, testEmb: Float32Array, dim: number) =>
      knnTop1({
        trainEmb,
        testEmb,
        dim,
        trainLabels: this.train.labels.subarray(0, nTrain),
        testLabels: this.test.labels.subarray(0, nTest),
        k: e.knn_k,
        temperature: e.knn_temperature,
        classes: this.train.labels.reduce((m, l) => Math.max(m, l), 0) + 1,
      });
    return {
      knn_top1: await knn(await this.model.embed(trainPx, nTrain), await this.model.embed(testPx, nTest), this.model.dim),
      raw_pixel_knn_top1: await knn(trainPx, testPx, px),
      knn_train: nTrain,
      knn_test: nTest,
    };
  }

  dataBytes(): number {
    return heldBytes([this.train, this.test]);
  }

  saveState(): Record<string, CheckpointArray> {
    return { 'key.dense': { dtype: 'float32', shape: [this.model.key.size], data: this.model.key.values } };
  }

  restoreState(state: ReadonlyMap<string, CheckpointArray>): void {
    this.model.key.values.set(state.get('key.dense')!.data as Float32Array);
  }
}

/** Training images per epoch: the training file's, or the first `images.max_train` of them. */
export function imageEpochSize(config: Config, trainCount: number): number {
  const max = config.images.max_train;
  return max > 0 ? Math.min(max, trainCount) : trainCount;
}
