import assert from 'node:assert/strict';
import { join } from 'node:path';
import test from 'node:test';
import { initBackend } from '../../common/backend.js';
import { defaultConfig } from '../../common/config/mod.js';
import { writeSyntheticClickLog } from '../../common/synthetic-clicklog.js';
import { tempDir } from '../../testing/test-helpers.js';
import { readClickLog } from '../data/clicklog-reader.js';
import { isHeldOutQuery } from '../data/holdout-split.js';
import { prepareDataset } from '../dataset/prepare-dataset.js';
import { textFeatures } from '../text/text-features.js';
import type { ClickBatch } from './clicklog-model.js';
import { jobEpochOf, loadTask } from './load-task.js';
import { PreparedClickLogTask } from './prepared-clicklog-task.js';
import { EVALUATING_ALONE } from '../eval/evaluation-group.js';

/** Each row of a batch as text: its site, its query key and its features. */
function rowsOf(b: ClickBatch, sites: readonly string[]): string[] {
  return Array.from(
    b.sites,
    (s, i) =>
      `${sites[s]} ${b.queryKeys[i]} ${Array.from(b.queryFeatures.ids.subarray(b.queryFeatures.offsets[i]!, b.queryFeatures.offsets[i + 1]!)).join(',')}`,
  );
}

test('a prepared dataset trains as its click log: an epoch is every training click once, in the same order however the positions are split', async (t) => {
  const dir = tempDir(t);
  const log = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(log, { queries: 400, sites: 40, seed: 8 });
  const ds = join(dir, 'ds');
  await prepareDataset([log], ds, { read: { warn: () => {} }, holdout: 0.1, shardBytes: 16 * 1024 });
  const config = defaultConfig();
  await initBackend(config.backend);
  Object.assign(config, { data: ds });
  Object.assign(config.clicklog, { hash_buckets: 1 << 10, embedding_dim: 8, hidden_dim: 16, output_dim: 8 });
  const task = await loadTask(config);
  assert.ok(task instanceof PreparedClickLogTask);
  const n = task.order.size;
  assert.equal((await jobEpochOf(config)).size, n, 'the coordinator counts from the manifest');

  // The expected examples: every training row of the log, once per click, featurised as training does.
  const whole = await readClickLog(log);
  const sites = await (task as PreparedClickLogTask).siteNames();
  const expected: string[] = [];
  const epoch = (await task.batchAt(0, n)) as ClickBatch;
  // Query keys are hashes: learn each query's from the epoch by its features and site.
  for (let r = 0; r < whole.rowQuery.length; r++) {
    const query = whole.queries[whole.rowQuery[r]!]!;
    if (isHeldOutQuery(query, 0.1)) continue;
    const features = textFeatures(query, 1 << 10).join(',');
    for (let c = 0; c < whole.rowClicks[r]!; c++) expected.push(`${whole.sites[whole.rowSite[r]!]} ${features}`);
  }
  const got = rowsOf(epoch, sites).map((row) => row.replace(/ -?\d+ /, ' '));
  assert.deepEqual([...got].sort(), expected.sort());

  // One worker or three, steps of any size: position p is the same example.
  const cut = async (pieces: number[]) => {
    const out: string[] = [];
    let at = 0;
    for (const size of pieces) {
      out.push(...rowsOf((await task.batchAt(at, size)) as ClickBatch, sites));
      at += size;
    }
    return out;
  };
  const all = rowsOf(epoch, sites);
  assert.deepEqual(await cut([n]), all);
  assert.deepEqual(await cut([Math.floor(n / 3), Math.floor(n / 3), n - 2 * Math.floor(n / 3)]), all);
  assert.deepEqual(await cut(Array.from({ length: Math.ceil(n / 48) }, (_, i) => Math.min(48, n - 48 * i))), all);
  // Rows of one query share their key (the site→query term's mask), others do not.
  const byFeatures = new Map<string, Set<number>>();
  epoch.sites.forEach((_, i) => {
    const f = epoch.queryFeatures.ids.subarray(epoch.queryFeatures.offsets[i]!, epoch.queryFeatures.offsets[i + 1]!).join(',');
    byFeatures.set(f, (byFeatures.get(f) ?? new Set()).add(epoch.queryKeys[i]!));
  });
  assert.ok([...byFeatures.values()].every((k) => k.size === 1));

  const figures = await task.evaluate(0, config.temperature.value, EVALUATING_ALONE);
  assert.ok((figures.held_out_pairs as number) > 0 && (figures.recall_at_10 as number) >= 0, JSON.stringify(figures));
});
