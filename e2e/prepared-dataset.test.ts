import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readCheckpoint } from '../common/checkpoint-file.js';
import type { Config } from '../common/config/mod.js';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { expectArraysClose, tempDir } from '../testing/test-helpers.js';
import { BIN, smallJob } from '../testing/cluster-test-helpers.js';
import { preparedSyntheticClickLog } from '../testing/prepared-click-log.js';
import { BLOCK_SHARDS, type ShardRange } from '../worker/dataset/sharded-example-order.js';

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

test('on 1, 2 and 3 workers the epochs read the same examples in the same order, and the shard ranges of commits.jsonl tile each epoch', async (t) => {
  const dir = tempDir(t);
  const { dataset: ds, manifest } = await preparedSyntheticClickLog(dir, { queries: 100, sites: 20, seed: 21, clicks: 200 }, 512);
  assert.ok(manifest.shards.length >= 2 * BLOCK_SHARDS, `${manifest.shards.length} shards: more than one block`);
  // 24 examples a step in every world: 2.5 epochs' worth.
  const steps = Math.ceil((2.5 * manifest.examples) / 24);
  const trails: string[] = [];
  const checkpoints = [];
  for (const world of [1, 2, 3]) {
    const name = `w${world}`;
    const c = smallJob(ds, join(dir, name), { steps, batch: 24 / world }, 100);
    c.clicklog.site_term_group = 4;
    const summary = await train(c, dir, name, world > 1 ? ['--workers', String(world)] : []);
    assert.equal(summary.steps, steps);
    const audit = JSON.parse(await cli(['audit', join(dir, name), '--json'])) as {
      problems: string[];
      complete_epochs: number[];
      shards: { epochs: number; blocks: number; shards: number };
    };
    assert.deepEqual(audit.problems, [], name);
    assert.deepEqual(audit.complete_epochs, [0, 1]);
    assert.equal(audit.shards.epochs, 2);
    assert.equal(audit.shards.shards, 2 * manifest.shards.length, 'every shard once an epoch');
    // Each step's shard ranges in rank order, adjacent pieces of one block merged: what the step read.
    const read = readFileSync(join(dir, name, 'commits.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const merged: ShardRange[] = [];
        for (const r of (JSON.parse(l) as { shard_ranges: ShardRange[][] }).shard_ranges.flat()) {
          const last = merged.at(-1);
          if (last !== undefined && last.epoch === r.epoch && last.shards.join() === r.shards.join() && last.range[1] === r.range[0])
            last.range[1] = r.range[1];
          else merged.push(r);
        }
        return JSON.stringify(merged);
      });
    trails.push(read.join('\n'));
    checkpoints.push(await readCheckpoint(join(dir, name, 'checkpoint.ibck')));
  }
  assert.match(await cli(['audit', join(dir, 'w3')]), /shards: the 2 complete epochs read \d+ blocks of \d+ shards, each block position once/);
  assert.equal(trails[1], trails[0], 'the same stream on 2 workers as on 1');
  assert.equal(trails[2], trails[0], 'the same stream on 3 workers as on 1');
  // And the workers read the same examples at those positions: the update is the single process's.
  for (const other of checkpoints.slice(1)) {
    assert.equal(other.meta.position, checkpoints[0]!.meta.position);
    for (const name of Object.keys(other.tensors))
      expectArraysClose(other.tensors[name]!.data, checkpoints[0]!.tensors[name]!.data, { atol: 1e-4, rtol: 1e-3 });
  }
});
