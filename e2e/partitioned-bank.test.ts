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
const STEPS = 6;
/** Smaller than the keys of the run (STEPS·W·B), not a multiple of any W: the queue wraps and shards are uneven. */
const BANK = 151;

interface StepLine {
  type: string;
  step: number;
  worker: number;
  loss: number;
  bounds: Record<string, number>;
  ceiling: number;
  accuracy: number;
  bank_fill: number;
  bank_digest: string;
  bank_shard_digest?: string;
}

function jobConfig(data: string, runDir: string, mode: Config['bank']['mode'], learnable: boolean): Config {
  const c = smallJob(data, runDir, { steps: STEPS, batch: 16 }, BANK);
  Object.assign(c, { engine: 'onnx' });
  Object.assign(c.train, { threads: 1, checkpoint_every: 3 });
  c.bank.mode = mode;
  c.bank.in_batch_negatives = learnable;
  c.temperature.learnable = learnable;
  return c;
}

async function train(config: Config, dir: string, workers: number): Promise<StepLine[]> {
  const path = join(dir, `config-${config.bank.mode}.json`);
  writeFileSync(path, JSON.stringify(config));
  const r = await run(process.execPath, [BIN, 'train', '--config', path, '--json', '--workers', String(workers)], { maxBuffer: 64 << 20 });
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as StepLine);
  assert.equal(lines.at(-1)!.type, 'summary');
  return lines.filter((l) => l.type === 'step').sort((a, b) => a.step - b.step || a.worker - b.worker);
}

// The whole-bank softmax combined across the shards is the replicated bank's: the same losses,
// bounds and parameters step by step, to float32 rounding, with the bank held in W parts.
for (const [workers, learnable] of [
  [2, false],
  [3, true],
] as const) {
  test(`${workers} workers, bank.mode partitioned trains as replicated${learnable ? ' (learned temperature, in-batch negatives)' : ''}`, async (t) => {
    const dir = tempDir(t);
    const data = join(dir, 'clicks.tsv');
    await writeSyntheticClickLog(data, { queries: 2000, sites: 200, seed: 5 });
    const replicated = await train(jobConfig(data, join(dir, 'replicated'), 'replicated', learnable), dir, workers);
    const partitioned = await train(jobConfig(data, join(dir, 'partitioned'), 'partitioned', learnable), dir, workers);

    assert.equal(partitioned.length, replicated.length, 'the same logged steps');
    assert.equal(partitioned.length, (STEPS - 1) * workers);
    partitioned.forEach((p, i) => {
      const r = replicated[i]!;
      const where = `step ${p.step}, worker ${p.worker}`;
      assert.deepEqual([p.step, p.worker], [r.step, r.worker]);
      assert.equal(p.ceiling, r.ceiling, `${where}: the ceiling counts the whole bank`);
      assert.equal(p.bank_fill, r.bank_fill, where);
      expectArraysClose([p.loss, p.accuracy], [r.loss, r.accuracy], { atol: 1e-4, rtol: 1e-4 });
      for (const name of ['infonce', 'nwj', 'dv', 'jsd']) expectArraysClose([p.bounds[name]!], [r.bounds[name]!], { atol: 1e-3, rtol: 1e-4 });
      assert.equal(r.bank_shard_digest, undefined, 'a replicated bank has no shards');
      assert.match(p.bank_shard_digest ?? '', /^[0-9a-f]{16}$/);
    });
    for (let s = 2; s <= STEPS; s++) {
      const peers = partitioned.filter((l) => l.step === s);
      assert.equal(new Set(peers.map((l) => l.bank_digest)).size, 1, `every member names the same whole bank at step ${s}`);
      assert.equal(new Set(peers.map((l) => l.bank_shard_digest)).size, workers, `each member holds its own shard at step ${s}`);
    }

    // The checkpoint holds the whole bank, gathered from the shards into the replicated layout.
    const a = await readCheckpoint(join(dir, 'partitioned', 'checkpoint.ibck'));
    const b = await readCheckpoint(join(dir, 'replicated', 'checkpoint.ibck'));
    assert.equal(a.meta.step, STEPS);
    assert.deepEqual(a.meta.bank, b.meta.bank);
    assert.deepEqual(Object.keys(a.tensors).sort(), Object.keys(b.tensors).sort());
    assert.deepEqual(a.tensors['bank.ids']!.data, b.tensors['bank.ids']!.data);
    assert.deepEqual(a.tensors['bank.steps']!.data, b.tensors['bank.steps']!.data);
    for (const name of Object.keys(a.tensors)) expectArraysClose(a.tensors[name]!.data, b.tensors[name]!.data, { atol: 2e-5, rtol: 1e-3 });
  });
}
