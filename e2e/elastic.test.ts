import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { auditCommits } from '../coordinator/commit-audit.js';
import { preparedSyntheticClickLog } from '../testing/prepared-click-log.js';
import { tempDir } from '../testing/test-helpers.js';
import { exited, smallJob, startJob, writeConfig } from '../testing/cluster-test-helpers.js';

// Enough steps after the kill at step 8 that the job is surely still running then.
const STEPS = 60;
const BATCH = 16;

test('a worker killed mid-step on a prepared dataset: the others roll back, re-form the ring and finish; every example and shard counted once', {
  timeout: 120_000,
}, async (t) => {
  const dir = tempDir(t);
  // A prepared dataset of ~540 training clicks in several shard blocks: the 30 steps of 32–48
  // examples run through more than one epoch.
  const { dataset, manifest } = await preparedSyntheticClickLog(dir, { queries: 300, sites: 30, seed: 21, clicks: 600 });
  const cfg = writeConfig(dir, 'config', smallJob(dataset, join(dir, 'run'), { steps: STEPS, batch: BATCH }));

  const { coordinator, workers, log } = await startJob(t, cfg, 3, ['--heartbeat-timeout', '1000']);

  const lines: { type: string; step?: number; worker?: number; steps?: number; restarts?: number; generation?: number; examples?: number }[] = [];
  let killed = false;
  for await (const line of createInterface({ input: coordinator.stdout! })) {
    const l = JSON.parse(line) as (typeof lines)[number];
    lines.push(l);
    if (!killed && l.type === 'step' && l.step! >= 8) {
      killed = true;
      workers[2]!.kill('SIGKILL');
    }
    if (l.type === 'summary') break;
  }
  assert.equal(await exited(coordinator), 0, log());
  assert.equal(await exited(workers[0]!), 0);
  assert.equal(await exited(workers[1]!), 0);
  const summary = lines.at(-1)!;
  assert.equal(summary.type, 'summary');
  assert.equal(summary.steps, STEPS, 'training finished');
  assert.ok(summary.restarts! >= 1, 'a new generation formed after the kill');
  assert.ok(lines.some((l) => l.type === 'step' && l.step! > 10 && l.worker === 1) && !lines.some((l) => l.type === 'step' && l.step! > 12 && l.worker === 2));

  // The audit trail: the committed ranges tile [0, cursor) with no gap and no overlap, so each
  // example of an epoch was consumed exactly once, whatever the world size of each step.
  const commits = readFileSync(join(dir, 'run', 'commits.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; world: number; cursor: number; ranges: [number, number][] });
  assert.deepEqual(
    commits.map((c) => c.step),
    Array.from({ length: STEPS }, (_, i) => i + 1),
    'every step committed once, in order',
  );
  assert.ok(commits.some((c) => c.world === 3) && commits.some((c) => c.world === 2));
  let next = 0;
  for (const c of commits) {
    for (const [start, count] of c.ranges) {
      assert.equal(start, next, `step ${c.step}: a range starts at ${start}, expected ${next}`);
      next += count;
    }
    assert.equal(c.cursor, next);
  }
  assert.equal(summary.examples, next);
  const { epoch_size: epochSize } = JSON.parse(readFileSync(join(dir, 'run', 'coordinator.json'), 'utf8')) as { epoch_size: number };
  assert.ok(next >= 2 * epochSize, `the run covers two epochs (${next} positions, epochs of ${epochSize})`);
  for (let e = 0; (e + 1) * epochSize <= next; e++) {
    let inEpoch = 0;
    for (const c of commits)
      for (const [start, count] of c.ranges) inEpoch += Math.max(0, Math.min(start + count, (e + 1) * epochSize) - Math.max(start, e * epochSize));
    assert.equal(inEpoch, epochSize, `epoch ${e}: committed examples equal the data set's size`);
  }
  // And in the shards: each complete epoch read every block's positions once, every shard once.
  const audit = auditCommits(readFileSync(join(dir, 'run', 'commits.jsonl'), 'utf8'));
  assert.deepEqual(audit.problems, []);
  assert.ok(audit.shards!.epochs >= 2 && audit.shards!.shards === audit.shards!.epochs * manifest.shards.length, JSON.stringify(audit.shards));
});

test('a worker sent SIGTERM finishes its step and leaves: the others go on at once, and the coordinator stops cleanly on SIGTERM', {
  timeout: 120_000,
}, async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 300, sites: 30, seed: 26, clicks: 600 });
  const cfg = writeConfig(dir, 'config', smallJob(data, join(dir, 'run'), { steps: 100_000, batch: BATCH }));
  // A long heartbeat timeout: only a Leave can remove the drained worker before the test ends.
  const { coordinator, workers, log } = await startJob(t, cfg, 3, ['--heartbeat-timeout', '60000']);
  let drainedAt = 0;
  let after = 0;
  for await (const line of createInterface({ input: coordinator.stdout! })) {
    const l = JSON.parse(line) as { type: string; step: number; worker: number };
    if (drainedAt === 0 && l.step >= 8) {
      drainedAt = l.step;
      workers[2]!.kill('SIGTERM');
    }
    // Steps committed by the two others after the drained worker left.
    if (drainedAt > 0 && /removed w2 \(left\)/.test(log()) && l.worker === 1) after++;
    if (after >= 10) break;
  }
  assert.equal(await exited(workers[2]!), 0, 'the drained worker exits cleanly');
  assert.match(log(), /generation \d+: 2 members; removed w2 \(left\)/);
  coordinator.kill('SIGTERM');
  assert.equal(await exited(coordinator), 0);
  assert.match(log(), /SIGTERM: stopped; start the coordinator again/);
  const state = JSON.parse(readFileSync(join(dir, 'run', 'coordinator.json'), 'utf8')) as { committed_step: number };
  assert.ok(state.committed_step > drainedAt, `the state file holds the progress (step ${state.committed_step})`);
});
