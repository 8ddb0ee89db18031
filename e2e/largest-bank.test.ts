// The config's largest bank, 1,048,576 keys, trains on one machine with the default engine at the
// default batch: the wasm heap of the tfjs engine crashed on half of it in step 1.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import test from 'node:test';
import { readCheckpoint } from '../common/checkpoint-file.js';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { runCli } from '../testing/cli-harness.js';
import { tempDir } from '../testing/test-helpers.js';

const LARGEST = 1_048_576;

test('a bank of 1,048,576 keys trains at B = 256 on the default engine', { timeout: 300_000 }, async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 6000, sites: 600, seed: 3 });
  const runDir = join(dir, 'run');
  const r = await runCli(['train', '--data', data, '--steps', '3', '--batch', '256', '--bank-size', String(LARGEST), '--run-dir', runDir, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; step?: number; loss?: number; bank_fill?: number; bounds?: Record<string, number>; steps?: number });
  const summary = lines.at(-1)!;
  assert.equal(summary.type, 'summary');
  assert.equal(summary.steps, 3);
  const logged = lines.filter((l) => l.type === 'step');
  assert.ok(logged.length > 0, 'at least one logged step');
  for (const l of logged) {
    assert.ok(Number.isFinite(l.loss), `step ${l.step}: finite loss`);
    for (const [name, v] of Object.entries(l.bounds!)) assert.ok(Number.isFinite(v), `step ${l.step}: finite ${name}`);
  }
  // The bank filled as it should: 256 keys a step into a ring of a million slots.
  const last = logged.at(-1)!;
  assert.equal(last.bank_fill, (256 * (last.step! - 1)) / LARGEST);
  const ck = await readCheckpoint(join(runDir, 'checkpoint.ibck'));
  const bank = (ck.meta as { bank: { capacity: number; filled: number } }).bank;
  assert.deepEqual(bank, { ...bank, capacity: LARGEST, filled: 3 * 256 });
});
