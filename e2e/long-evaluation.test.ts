// The held-out evaluation at the end of a job, shared by both members, takes longer than the heartbeat
// timeout: the members must stay members (their heartbeats keep flowing) and the summary must carry it.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import test from 'node:test';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { exited, smallJob, startJob, writeConfig } from '../testing/cluster-test-helpers.js';
import { tempDir } from '../testing/test-helpers.js';

// Three heartbeat periods (a worker pings every 500 ms): short enough that an evaluation outlasts it.
const HEARTBEAT_TIMEOUT_MS = 1500;

test('an evaluation shared by the members and longer than the heartbeat timeout costs nobody its place: the summary has it', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  // Many sites: every held-out pair is ranked against all of them.
  await writeSyntheticClickLog(data, { queries: 50_000, sites: 60_000, seed: 3 });
  const config = smallJob(data, join(dir, 'run'), { steps: 4 }, 100);
  Object.assign(config.eval, { enabled: true });
  const job = await startJob(t, writeConfig(dir, 'job', config), 2, ['--heartbeat-timeout', String(HEARTBEAT_TIMEOUT_MS)]);
  let stdout = '';
  job.coordinator.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  assert.equal(await exited(job.coordinator), 0, job.log());
  const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    type: string;
    eval: Record<string, number>;
    eval_seconds: number;
    eval_members: number;
    true_mi: number | null;
    restarts: number;
  };
  assert.equal(summary.type, 'summary');
  assert.ok(
    summary.eval_seconds * 1000 > HEARTBEAT_TIMEOUT_MS,
    `the evaluation took ${summary.eval_seconds} s: longer than the heartbeat timeout\n${job.log()}`,
  );
  assert.ok(summary.eval.recall_at_10! > 0, `evaluation in the summary: ${JSON.stringify(summary.eval)}`);
  assert.equal(summary.eval_members, 2, `both members ranked their share of the sites\n${job.log()}`);
  assert.ok(summary.eval.sites! > 50_000, `every site ranked: ${summary.eval.sites}`);
  assert.equal(typeof summary.true_mi, 'number');
  assert.equal(summary.restarts, 0, 'no member was dropped');
  assert.doesNotMatch(job.log(), /heartbeat_timeout/);
});

test('a member killed during the shared evaluation: rank 0 evaluates alone and the summary still has the figures', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 50_000, sites: 30_000, seed: 3 });
  const config = smallJob(data, join(dir, 'run'), { steps: 4 }, 100);
  Object.assign(config.eval, { enabled: true });
  const job = await startJob(t, writeConfig(dir, 'job', config), 2, []);
  let stdout = '';
  job.coordinator.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const logs = ['', ''];
  // Rank 0 says when the evaluation starts; the other member is killed then, in the middle of its share.
  const lead = new Promise<number>((resolve) =>
    job.workers.forEach((w, i) =>
      w.stderr!.on('data', (d: Buffer) => {
        logs[i] += d.toString();
        if (/evaluating on held-out data, shared by 2 members/.test(logs[i]!)) resolve(i);
      }),
    ),
  );
  const rank0 = await lead;
  job.workers[1 - rank0]!.kill('SIGKILL');
  assert.equal(await exited(job.coordinator), 0, job.log());
  assert.equal(await exited(job.workers[rank0]!), 0, logs[rank0]);
  const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as { type: string; eval: Record<string, number>; eval_members: number };
  assert.equal(summary.type, 'summary');
  assert.match(logs[rank0]!, /the shared evaluation failed .*; rank 0 evaluates alone/);
  assert.equal(summary.eval_members, 1);
  assert.ok(summary.eval.recall_at_10! > 0, JSON.stringify(summary.eval));
});
