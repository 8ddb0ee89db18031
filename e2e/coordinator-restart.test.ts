import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { tempDir } from '../testing/test-helpers.js';
import { auditCommits } from '../coordinator/commit-audit.js';
import { preparedSyntheticClickLog } from '../testing/prepared-click-log.js';
import { exited, freePort, smallJob, startCli, writeConfig } from '../testing/cluster-test-helpers.js';

// Far more steps than the kill points (step 12): the job must still be running when it is killed.
const STEPS = 120;

type Line = { type: string; step?: number; steps?: number; examples?: number };

test('a coordinator killed and started again resumes from the last checkpoint; the workers reconnect and finish', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 1000, sites: 100, seed: 22 });
  const cfg = writeConfig(dir, 'config', smallJob(data, join(dir, 'run'), { steps: STEPS, checkpoint_every: 5 }));
  const port = String(await freePort());
  const coordinatorArgs = ['coordinator', '--config', cfg, '--workers', '2', '--json', '--port', port];

  const first = startCli(coordinatorArgs);
  t.after(() => first.kill('SIGKILL'));
  const workers = [0, 1].map((i) => startCli(['worker', '--coordinator', `127.0.0.1:${port}`, '--config', cfg, '--worker-id', `w${i}`]));
  t.after(() => workers.forEach((w) => w.kill('SIGKILL')));
  for await (const line of createInterface({ input: first.stdout! })) {
    if ((JSON.parse(line) as Line).step! >= 12) break;
  }
  first.kill('SIGKILL');
  await exited(first);

  const second = startCli(coordinatorArgs);
  t.after(() => second.kill('SIGKILL'));
  let stderr = '';
  second.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines: Line[] = [];
  for await (const line of createInterface({ input: second.stdout! })) {
    lines.push(JSON.parse(line) as Line);
    if (lines.at(-1)!.type === 'summary') break;
  }
  assert.equal(await exited(second), 0, stderr);
  for (const w of workers) assert.equal(await exited(w), 0);
  const firstStep = lines.find((l) => l.type === 'step')!.step!;
  assert.ok(firstStep >= 6 && firstStep <= 13, `the job resumed after the last checkpoint (step ${firstStep})`);
  assert.equal(lines.at(-1)!.steps, STEPS, 'training finished');

  // Commits after the restart pick up at the checkpoint's cursor: together with the commits up to the
  // checkpoint they tile the stream with no gap and no overlap.
  const commits = readFileSync(join(dir, 'run', 'commits.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; cursor: number; ranges: [number, number][] });
  const resumedAt = commits.findIndex((c, i) => i > 0 && c.step <= commits[i - 1]!.step);
  assert.ok(resumedAt > 0, 'steps after the checkpoint were committed again after the restart');
  const kept = [...commits.slice(0, resumedAt).filter((c) => c.step < commits[resumedAt]!.step), ...commits.slice(resumedAt)];
  assert.deepEqual(
    kept.map((c) => c.step),
    Array.from({ length: STEPS }, (_, i) => i + 1),
  );
  let next = 0;
  for (const c of kept) {
    for (const [start, count] of c.ranges) {
      assert.equal(start, next);
      next += count;
    }
  }
  assert.equal(next, STEPS * 2 * 16);
});

test('a job on a prepared dataset stopped whole resumes from its checkpoint on a different worker count', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const { dataset } = await preparedSyntheticClickLog(dir, { queries: 1000, sites: 100, seed: 25 }, 16 * 1024);
  const cfg = writeConfig(dir, 'config', smallJob(dataset, join(dir, 'run'), { steps: STEPS, checkpoint_every: 5 }));
  const port = String(await freePort());
  const worker = (i: number) => startCli(['worker', '--coordinator', `127.0.0.1:${port}`, '--config', cfg, '--worker-id', `w${i}`]);

  // Three workers until step 12, then everything is killed.
  const first = startCli(['coordinator', '--config', cfg, '--workers', '3', '--json', '--port', port]);
  t.after(() => first.kill('SIGKILL'));
  const three = [0, 1, 2].map(worker);
  t.after(() => three.forEach((w) => w.kill('SIGKILL')));
  for await (const line of createInterface({ input: first.stdout! })) {
    if ((JSON.parse(line) as Line).step! >= 12) break;
  }
  for (const p of [first, ...three]) p.kill('SIGKILL');
  await Promise.all([first, ...three].map(exited));

  // One fresh worker finishes the job from the checkpoint.
  const second = startCli(['coordinator', '--config', cfg, '--workers', '1', '--json', '--port', port]);
  t.after(() => second.kill('SIGKILL'));
  const one = worker(9);
  t.after(() => one.kill('SIGKILL'));
  let stderr = '';
  one.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines: Line[] = [];
  for await (const line of createInterface({ input: second.stdout! })) {
    lines.push(JSON.parse(line) as Line);
    if (lines.at(-1)!.type === 'summary') break;
  }
  assert.equal(await exited(one), 0, stderr);
  assert.match(stderr, /loaded the checkpoint of step (5|10)\b/);
  assert.equal(lines.at(-1)!.steps, STEPS);
  const commits = readFileSync(join(dir, 'run', 'commits.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; world: number });
  assert.ok(commits.some((c) => c.world === 3) && commits.at(-1)!.world === 1);
  // The steps after the checkpoint were committed again at one worker: the later commits count, and
  // the positions and shard blocks they read are still each read once.
  const audit = auditCommits(readFileSync(join(dir, 'run', 'commits.jsonl'), 'utf8'));
  assert.deepEqual(audit.problems, []);
  assert.equal(audit.rollbacks.length, 1);
  assert.notEqual(audit.shards, null);
});
