import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { initBackend } from '../../common/backend.js';
import { defaultConfig } from '../../common/config/mod.js';
import { describeMemory, formatBytes } from '../../common/memory-parts.js';
import { preparedSyntheticClickLog } from '../../testing/prepared-click-log.js';
import { tempDir } from '../../testing/test-helpers.js';
import { KeyBank } from '../bank/key-bank.js';
import { Adam } from '../optim/adam.js';
import { loadTask } from './load-task.js';
import { memoryByPart } from './memory-by-part.js';
import { PreparedClickLogTask } from './prepared-clicklog-task.js';

test("a worker's memory by part counts its bank, tables, optimiser rows, parameters and the shards it has loaded", async (t) => {
  const { dataset: ds } = await preparedSyntheticClickLog(tempDir(t), { queries: 400, sites: 40, seed: 8 }, 16 * 1024);
  const config = defaultConfig();
  await initBackend(config.backend);
  Object.assign(config, { data: ds });
  const [buckets, e, h, d] = [1 << 10, 8, 16, 8];
  Object.assign(config.clicklog, { hash_buckets: buckets, embedding_dim: e, hidden_dim: h, output_dim: d });
  const task = await loadTask(config);
  assert.ok(task instanceof PreparedClickLogTask);
  const k = 300;
  const ctx = { bank: new KeyBank(k, d), adam: new Adam(task.model.online.size, { lr: 0.01 }) };

  const before = memoryByPart(task, ctx);
  assert.equal(before.bank, k * d * 4 + 2 * k * 4, 'keys, ids and steps');
  // The query and site tables, the momentum copy of the site table (with its row stamps), and the tables' scratch row maps;
  // the same for the site ID rows (one a site, clicklog.site_ids), but for their one momentum copy.
  const sites = task.model.itemCount;
  assert.equal(before.tables, 3 * buckets * e * 4 + 3 * buckets * 4 + 2 * sites * e * 4 + 2 * sites * 4);
  // Row-wise Adagrad keeps one float a row of each trained table; Adam two moments a dense parameter.
  assert.equal(before.optimizer, 2 * buckets * 4 + sites * 4 + 2 * task.model.online.size * 4);
  assert.equal(before.dense, (task.model.online.size + task.model.key.size) * 4);
  const siteFile = statSync(join(ds, task.dataset.manifest.site_features.file)).size;
  assert.ok(before.data > 0 && before.data < 2 * siteFile + 40 * 16, `the site vocabulary's features only, before any shard: ${before.data}`);

  // A batch loads the shards of its block: the data part grows by what was read, the rest stays.
  await task.batchAt(0, 8);
  const after = memoryByPart(task, ctx);
  const shardBytes = task.dataset.manifest.shards.map((s) => s.bytes);
  assert.ok(after.data > before.data, 'the loaded shards count');
  assert.ok(after.data - before.data <= shardBytes.reduce((a, b) => a + b, 0) * 2, 'no more than the shards read (with their row index)');
  assert.deepEqual({ ...after, data: 0 }, { ...before, data: 0 });

  assert.match(
    describeMemory(after),
    /^memory: bank 11\.7 KiB, tables [\d.]+ KiB, optimizer [\d.]+ KiB, dense [\d.]+ KiB, data [\d.]+ KiB; [\d.]+ KiB in all$/,
  );
  assert.equal(formatBytes(640), '640 B');
  assert.equal(formatBytes(3 * 1024 ** 3), '3.0 GiB');
});
