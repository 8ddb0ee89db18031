import { join } from 'node:path';
import { writeSyntheticClickLog, type SyntheticClickLogOptions } from '../common/synthetic-clicklog.js';
import type { DatasetManifest } from '../worker/dataset/dataset-manifest.js';
import { prepareDataset } from '../worker/dataset/prepare-dataset.js';

/**
 * A synthetic click log written in `dir` and prepared into `dir`/ds with small shards (so that a few
 * hundred rows make several blocks) and 10% of the queries held out, as `infobound prepare` does.
 */
export async function preparedSyntheticClickLog(
  dir: string,
  log: SyntheticClickLogOptions,
  shardBytes = 2048,
): Promise<{ dataset: string; manifest: DatasetManifest }> {
  const path = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(path, log);
  const dataset = join(dir, 'ds');
  const { manifest } = await prepareDataset([path], dataset, { read: { warn: () => {} }, holdout: 0.1, shardBytes });
  return { dataset, manifest };
}
