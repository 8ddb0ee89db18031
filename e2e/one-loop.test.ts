// The one training loop seen from outside: a single process and a cluster of one write the same
// step lines, and a non-finite step is refused in every mode.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { readCheckpoint } from '../common/checkpoint-file.js';
import type { Config } from '../common/config/mod.js';
import type { StepLine, SummaryLine } from '../common/run-lines.js';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { CHECKPOINT_FILE } from '../coordinator/job-log.js';
import { smallJob } from '../testing/cluster-test-helpers.js';
import { runInProcessJob } from '../testing/in-process-job.js';
import { tempDir } from '../testing/test-helpers.js';
import { train } from '../worker/train/trainer.js';

/** The lines of a run directory's run.jsonl (step lines, then the summary). */
function runLines(runDir: string): (StepLine | SummaryLine)[] {
  return readFileSync(join(runDir, 'run.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as StepLine | SummaryLine);
}

function stepLines(runDir: string): StepLine[] {
  return runLines(runDir).filter((l): l is StepLine => l.type === 'step');
}

function commits(runDir: string): { step: number; ranges: number[][]; refused?: string }[] {
  return readFileSync(join(runDir, 'commits.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; ranges: number[][]; refused?: string });
}

async function clickLog(dir: string): Promise<string> {
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 2000, sites: 200, seed: 5 });
  return data;
}

/** Timing fields: the only ones two runs of the same job may differ in. */
const TIMINGS = new Set(['examples_per_s', 'step_ms']);

test('a single-process run and a 1-worker cluster run produce the same step lines, field for field', async (t) => {
  const dir = tempDir(t);
  const data = await clickLog(dir);
  const single = smallJob(data, join(dir, 'single'), { steps: 6 }, 100);
  const cluster = smallJob(data, join(dir, 'cluster'), { steps: 6 }, 100);
  const singleSummary = await train(single);
  const job = await runInProcessJob(t, cluster, { workers: 1 });
  const clusterSummary = await job.summary;
  await Promise.all(job.workers);

  const a = stepLines(single.run_dir!);
  const b = stepLines(cluster.run_dir!);
  assert.ok(a.length >= 5, `the logged steps (${a.length})`);
  assert.deepEqual(
    a.map((l) => l.step),
    b.map((l) => l.step),
  );
  for (const [i, line] of a.entries()) {
    const other = b[i]!;
    assert.deepEqual(Object.keys(line).sort(), Object.keys(other).sort(), `the fields of step ${line.step}'s line`);
    for (const [field, value] of Object.entries(line)) {
      if (!TIMINGS.has(field)) assert.deepEqual(value, other[field as keyof StepLine], `step ${line.step}: ${field}`);
    }
  }
  assert.deepEqual(Object.keys(singleSummary).sort(), Object.keys(clusterSummary).sort(), 'the summaries have the same fields');
  for (const field of [
    'steps',
    'examples',
    'bounds',
    'initial_bounds',
    'max_infonce',
    'ceiling',
    'true_mi',
    'temperature',
    'skipped_inputs',
    'generation',
    'restarts',
    'workers',
  ] as const) {
    assert.deepEqual(singleSummary[field], clusterSummary[field], `summary ${field}`);
  }
  assert.deepEqual(
    commits(single.run_dir!).map((c) => c.ranges),
    commits(cluster.run_dir!).map((c) => c.ranges),
    'the same examples, step by step',
  );
});

test('a non-finite gradient on one worker of two: the step is refused on both and counted, nothing of it is applied', async (t) => {
  const dir = tempDir(t);
  const data = await clickLog(dir);
  const faulty = smallJob(data, join(dir, 'faulty'), { steps: 6 }, 100);
  const job = await runInProcessJob(t, faulty, {
    workers: 2,
    gradientHooks: [
      () => {},
      (g, step) => {
        if (step === 4) g[3] = Number.NaN;
      },
    ],
  });
  const summary = await job.summary;
  await Promise.all(job.workers);

  assert.equal(summary.skipped_inputs.non_finite_step, 1);
  assert.equal(summary.steps, 6);
  assert.equal(summary.examples, 5 * 2 * 16, 'the refused step trained no examples');
  const log = commits(faulty.run_dir!);
  assert.deepEqual(
    log.map((c) => [c.step, c.refused ?? null]),
    [1, 2, 3, 4, 5, 6].map((s) => [s, s === 4 ? 'non_finite_step' : null]),
  );
  assert.equal(log[3]!.ranges.length, 2, "the refused step's examples are still accounted for, rank by rank");
  const lines = stepLines(faulty.run_dir!);
  assert.ok(!lines.some((l) => l.step === 4), 'a refused step has no step line');
  assert.ok(lines.every((l) => Number.isFinite(l.loss)));
  const at5 = lines.filter((l) => l.step === 5);
  assert.equal(at5.length, 2);
  assert.equal(at5[0]!.params_digest, at5[1]!.params_digest, 'both workers hold the same parameters');

  // A clean run of the same job: its parameters before step 4 are the faulty run's before step 5.
  const clean = smallJob(data, join(dir, 'clean'), { steps: 4 }, 100);
  const reference = await runInProcessJob(t, clean, { workers: 2 });
  await reference.summary;
  await Promise.all(reference.workers);
  const before4 = stepLines(clean.run_dir!).find((l) => l.step === 4)!;
  assert.equal(at5[0]!.params_digest, before4.params_digest, 'step 4 moved no parameter');
});

test('max_non_finite_steps refused steps in a row stop the run with one line, in a cluster and in a single process; the last checkpoint is intact', async (t) => {
  const dir = tempDir(t);
  const data = await clickLog(dir);
  const streak = (c: Config) => Object.assign(c.train, { max_non_finite_steps: 2, checkpoint_every: 2 });
  const poisoned = (g: Float32Array, step: number) => step >= 5 && g.fill(Number.NaN);
  const message = /steps 5–6: the loss or a gradient was not finite 2 times in a row \(train\.max_non_finite_steps\)/;

  const cluster = smallJob(data, join(dir, 'cluster'), { steps: 12 }, 100);
  streak(cluster);
  const job = await runInProcessJob(t, cluster, { workers: 2, gradientHooks: [poisoned, () => {}] });
  await assert.rejects(job.summary, message);
  for (const w of job.workers) await assert.rejects(w, message);
  // Checkpoints hold the state a step starts from: the one written at step 5 is step 4's, intact.
  assert.equal((await readCheckpoint(join(cluster.run_dir!, CHECKPOINT_FILE))).meta.step, 4);

  const single = smallJob(data, join(dir, 'single'), { steps: 12 }, 100);
  streak(single);
  await assert.rejects(train(single, { localGradientHook: poisoned }), message);
  assert.equal((await readCheckpoint(join(single.run_dir!, CHECKPOINT_FILE))).meta.step, 4);
});
