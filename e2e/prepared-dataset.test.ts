import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readCheckpoint } from '../common/checkpoint-file.js';
import type { Config } from '../common/config/mod.js';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { expectArraysClose, tempDir } from '../testing/test-helpers.js';
import { BIN, smallJob } from '../testing/cluster-test-helpers.js';

const run = promisify(execFile);
const BATCH = 16;
const STEPS = 6;

async function cli(args: string[]): Promise<string> {
  return (await run(process.execPath, [BIN, ...args], { maxBuffer: 64 << 20 })).stdout;
}

async function train(config: Config, dir: string, name: string, extra: string[]): Promise<Record<string, unknown>> {
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(config));
  const lines = (await cli(['train', '--config', path, '--json', ...extra])).trim().split('\n');
  return JSON.parse(lines.at(-1)!) as Record<string, unknown>;
}

test('prepare, then train on the dataset: 2 workers make the update of 1 on the concatenated batches, the audit proves exactly-once, evaluation is reported', async (t) => {
  const dir = tempDir(t);
  const log = join(dir, 'clicks.tsv.gz');
  await writeSyntheticClickLog(log, { queries: 2000, sites: 200, seed: 12 });
  const ds = join(dir, 'ds');
  const prepared = JSON.parse(await cli(['prepare', log, '--out', ds, '--shard-mb', '1', '--json'])) as { examples: number; shards: number };
  assert.ok(prepared.examples > 0);
  const job = (runDir: string, batch: number): Config => {
    const c = smallJob(ds, join(dir, runDir), { steps: STEPS, batch }, 100);
    c.clicklog.site_term_group = BATCH;
    c.eval.enabled = true;
    return c;
  };
  const cluster = await train(job('cluster', BATCH), dir, 'cluster', ['--workers', '2']);
  const single = await train(job('single', 2 * BATCH), dir, 'single', []);
  for (const summary of [cluster, single]) {
    assert.equal(summary.steps, STEPS);
    assert.equal(summary.examples, STEPS * 2 * BATCH);
    assert.ok(typeof (summary.eval as { recall_at_10?: number }).recall_at_10 === 'number', JSON.stringify(summary.eval));
    assert.ok(typeof summary.true_mi === 'number', 'the true MI comes from the manifest');
  }
  const a = await readCheckpoint(join(dir, 'cluster', 'checkpoint.ibck'));
  const b = await readCheckpoint(join(dir, 'single', 'checkpoint.ibck'));
  assert.equal(a.meta.position, b.meta.position);
  for (const name of Object.keys(a.tensors)) expectArraysClose(a.tensors[name]!.data, b.tensors[name]!.data, { atol: 2e-5, rtol: 1e-3 });
  const audit = JSON.parse(await cli(['audit', join(dir, 'cluster'), '--json'])) as { problems: unknown[]; epoch_size: number };
  assert.deepEqual(audit.problems, []);
  assert.equal(audit.epoch_size, prepared.examples, "the coordinator's epoch is the manifest's");
});
