import { join } from 'node:path';
import { resolveKind, type Config } from '../../common/config/mod.js';
import { clickLogReadOptions } from '../data/clicklog-reader.js';
import { isDatasetDirectory } from './dataset-manifest.js';
import { prepareDataset } from './prepare-dataset.js';

/** Where a run keeps the dataset its raw click log was prepared into. */
export const RUN_DATASET_DIR = 'dataset';

/**
 * The config a run trains with: a raw click log is first prepared into the run directory
 * (`RUN_DIR/dataset`), so that every click-log run reads shards and no process holds the whole log;
 * run again (a resume), the same log is not prepared twice. Images and prepared datasets are used as
 * they are.
 */
export async function withPreparedData(config: Config, runDir: string, info?: (message: string) => void, warn?: (message: string) => void): Promise<Config> {
  if (config.data === null || resolveKind(config) !== 'clicklog' || (await isDatasetDirectory(config.data))) return config;
  const out = join(runDir, RUN_DATASET_DIR);
  const started = performance.now();
  const { manifest, alreadyPrepared } = await prepareDataset([config.data], out, {
    read: clickLogReadOptions(config.clicklog, warn),
    holdout: config.clicklog.holdout,
  });
  if (!alreadyPrepared) {
    info?.(
      `prepared ${config.data} into ${out}: ${manifest.rows.train + manifest.rows.held_out} rows in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  }
  return { ...config, data: out };
}
