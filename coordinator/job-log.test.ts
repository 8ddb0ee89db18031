import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { defaultConfig } from '../common/config/mod.js';
import type { StepReport__Output } from '../proto/generated/infobound/v1/StepReport.js';
import { tempDir } from '../testing/test-helpers.js';
import { JobLog } from './job-log.js';

function report(rank: number, step: number, o: { logged?: boolean; refused?: string } = {}): StepReport__Output {
  const logged = o.logged ?? true;
  return {
    worker_id: `w${rank}`,
    generation: 1,
    session: '',
    step,
    examples: 8,
    checkpoint_written: false,
    split_start: (step - 1) * 16 + rank * 8,
    refused: o.refused ?? '',
    metrics: {
      loss: 2 + rank,
      bounds: { infonce: step, nwj: 0, dv: 0, jsd: -1 },
      ceiling: Math.log(101),
      temperature: 0.07,
      accuracy: 0.5,
      examples_per_s: 100,
      grad_norm: 1,
      bank_fill: 1,
      bank_digest: 'd',
      bank_shard_digest: '',
      bank_lag: 0,
      key_age_steps: 1,
      key_age_counts: [1],
      data_ms: 1,
      compute_ms: 2,
      allreduce_ms: 3,
      bank_wait_ms: 4,
      params_digest: 'p',
      logged,
      epoch: 0,
    },
  };
}

function newLog(dir: string): JobLog {
  const config = defaultConfig();
  Object.assign(config, { kind: 'clicklog', run_dir: dir });
  config.bank.size = 100;
  const log = new JobLog(config, dir, { workers: 2 });
  const members = [0, 1].map((rank) => ({ worker_id: `w${rank}`, peer_address: '', rank }));
  log.membership({ generation: 1, members, committedStep: 0, joined: ['w0', 'w1'], removed: [] });
  return log;
}

test('the job log writes every commit with its ranges, the logged steps of every member, and the summary', async (t) => {
  const dir = tempDir(t);
  const log = newLog(dir);
  for (const step of [1, 2, 3]) {
    const refused = step === 2 ? 'non_finite_step' : '';
    log.commit({
      step,
      generation: 1,
      world: 2,
      epoch: 0,
      epochSize: 1000,
      ranges: [
        [(step - 1) * 16, 8],
        [(step - 1) * 16 + 8, 8],
      ],
      cursor: step * 16,
      checkpoint: false,
      reports: [report(0, step, { refused }), report(1, step, { refused })],
    });
  }
  log.done();
  log.left({ workerId: 'w1', rank: 1, generation: 2, summaryJson: JSON.stringify({ skipped_inputs: {} }) });
  log.left({
    workerId: 'w0',
    rank: 0,
    generation: 3,
    summaryJson: JSON.stringify({ eval: { recall_at_10: 0.5 }, eval_seconds: 2, true_mi: 4, skipped_inputs: { non_finite_step: 1, zero: 0 } }),
  });
  const summary = await log.summary;
  assert.equal(summary.steps, 3);
  assert.equal(summary.examples, 2 * 16, 'the refused step trained nothing');
  assert.deepEqual(summary.eval, { recall_at_10: 0.5 });
  assert.equal(summary.eval_seconds, 2);
  assert.equal(summary.true_mi, 4);
  assert.deepEqual(summary.skipped_inputs, { non_finite_step: 1 });
  assert.equal(summary.generation, 1, 'the generation that committed the last step');
  assert.equal(summary.workers, 2);
  const commits = readFileSync(join(dir, 'commits.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; ranges: number[][]; refused?: string });
  assert.deepEqual(
    commits.map((c) => [c.step, c.refused ?? null]),
    [
      [1, null],
      [2, 'non_finite_step'],
      [3, null],
    ],
  );
  assert.deepEqual(commits[2]!.ranges, [
    [32, 8],
    [40, 8],
  ]);
  const lines = readFileSync(join(dir, 'run.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; step?: number; worker?: number });
  assert.deepEqual(
    lines.filter((l) => l.type === 'step').map((l) => [l.step, l.worker]),
    [
      [1, 0],
      [1, 1],
      [3, 0],
      [3, 1],
    ],
  );
  assert.equal(lines.at(-1)!.type, 'summary');
});

test('a member that stops the run with an error fails the summary with its line', async (t) => {
  const log = newLog(tempDir(t));
  log.left({ workerId: 'w1', rank: 1, generation: 1, summaryJson: JSON.stringify({ error: 'steps 5–6: not finite' }) });
  await assert.rejects(log.summary, { name: 'UserError', message: 'steps 5–6: not finite' });
});

test("final figures that are not a JSON object are left out, and rank 0's still end the job", async (t) => {
  const said: string[] = [];
  const dir = tempDir(t);
  const config = defaultConfig();
  Object.assign(config, { kind: 'clicklog', run_dir: dir });
  const log = new JobLog(config, dir, { workers: 1, info: (m) => said.push(m) });
  log.left({ workerId: 'w0', rank: 0, generation: 1, summaryJson: '{not json' });
  const summary = await log.summary;
  assert.deepEqual(summary.eval, {});
  assert.ok(said.some((m) => /not a JSON object/.test(m)));
});
