import { resolveKind, type Config } from '../../common/config/mod.js';
import { UserError } from '../../common/user-error.js';
import { clickLogReadOptions, readClickLog } from '../data/clicklog-reader.js';
import { readImageDataset } from '../data/idx-reader.js';
import { trainingClickCount } from './clicklog-dataset.js';
import { ClickLogTask, noTrainingClicks } from './clicklog-task.js';
import { ImageTask, imageEpochSize } from './image-task.js';
import { isDatasetDirectory, readManifest } from '../dataset/dataset-manifest.js';
import { PreparedClickLogTask } from './prepared-clicklog-task.js';
import { ShardedExampleOrder, type ShardRange } from '../dataset/sharded-example-order.js';
import type { TrainingTask } from './training-task.js';

/** Loads the data named by `config.data` and builds the model of its kind. */
export async function loadTask(config: Config, warn?: (message: string) => void): Promise<TrainingTask<unknown>> {
  requireData(config);
  if (resolveKind(config) === 'images') return ImageTask.load(config);
  return loadClickLogTask(config, warn);
}

/** The click-log task of `config.data`: a prepared dataset's, or a raw log's read whole. */
export async function loadClickLogTask(config: Config, warn?: (message: string) => void): Promise<ClickLogTask | PreparedClickLogTask> {
  requireData(config);
  return (await isDatasetDirectory(config.data!)) ? PreparedClickLogTask.load(config) : ClickLogTask.load(config, warn);
}

/** The job's epoch as a coordinator plans it. */
export interface JobEpoch {
  /** Examples per epoch. */
  size: number;
  /** For a prepared dataset: the shard blocks a range of stream positions reads (commits.jsonl's `shard_ranges`). */
  shardRanges?(start: number, count: number): ShardRange[];
}

/**
 * The epoch of the data `config` names, counted as a worker's task would count it, without building a
 * model: what a coordinator plans over (its own count, never a joiner's). A prepared dataset's comes
 * from its manifest, with no pass over the data.
 */
export async function jobEpochOf(config: Config): Promise<JobEpoch> {
  requireData(config);
  if (resolveKind(config) === 'images') return { size: imageEpochSize(config, (await readImageDataset(config.data!, 'train')).count) };
  if (await isDatasetDirectory(config.data!)) {
    const order = ShardedExampleOrder.ofDataset(await readManifest(config.data!), config.seed);
    return { size: order.size, shardRanges: (start, count) => order.shardRanges(start, count) };
  }
  // Quiet: the workers report the skipped lines.
  const log = await readClickLog(
    config.data!,
    clickLogReadOptions(config.clicklog, () => {}),
  );
  const count = trainingClickCount(log, config.clicklog.holdout);
  if (count === 0) throw noTrainingClicks(config);
  return { size: count };
}

function requireData(config: Config): void {
  if (config.data === null) throw new UserError('no data: pass --data FILE (a click log, or a directory of IDX files)');
}
