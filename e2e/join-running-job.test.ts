import test from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { tempDir } from '../testing/test-helpers.js';
import { assertWholeStepsInBank } from '../testing/checkpoint-bank.js';
import { NatsTestServer } from '../testing/nats-test-server.js';
import { exited, listeningAddress, smallJob, startCli, writeConfig } from '../testing/cluster-test-helpers.js';

const STEPS = 120;

type Line = {
  type: string;
  step?: number;
  worker?: number;
  params_digest?: string;
  bank_digest?: string;
  bank_shard_digest?: string;
  restarts?: number;
  steps?: number;
};

for (const bank of ['ring', 'NATS', 'NATS, partitioned', 'ring, partitioned'] as const) {
  test(`a worker joining a running job gets the current weights before it trains (bank over ${bank})`, { timeout: 120_000 }, async (t) => {
    const partitioned = bank.endsWith('partitioned');
    const nats = bank.startsWith('NATS') ? ['--nats', (await NatsTestServer.start(t)).url] : [];
    const dir = tempDir(t);
    const data = join(dir, 'clicks.tsv');
    await writeSyntheticClickLog(data, { queries: 1000, sites: 100, seed: 23 });
    const job = smallJob(data, join(dir, 'run'), { steps: STEPS });
    // Over NATS the replicas lag by two steps: the joiner must also pick up the keys still due.
    if (nats.length > 0) job.bank.staleness = 2;
    // Partitioned, every member's place changes with the join: each rebuilds its shard from the stream, or without one the members deal the bank anew between them.
    if (partitioned) Object.assign(job, { engine: 'onnx' }, { bank: { ...job.bank, mode: 'partitioned' } });
    const cfg = writeConfig(dir, 'config', job);

    const coordinator = startCli(['coordinator', '--config', cfg, '--workers', '2', '--json', ...nats]);
    t.after(() => coordinator.kill('SIGKILL'));
    let stderr = '';
    coordinator.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const address = await listeningAddress(coordinator);
    const workerArgs = (i: number) => ['worker', '--coordinator', address, '--config', cfg, '--worker-id', `w${i}`, ...nats];
    const workers = [startCli(workerArgs(0)), startCli(workerArgs(1))];
    const logs = ['', '', ''];
    workers.forEach((w, i) => w.stderr!.on('data', (d: Buffer) => (logs[i] += d.toString())));
    t.after(() => workers.forEach((w) => w.kill('SIGKILL')));
    const lines: Line[] = [];
    let joinerLog = '';
    for await (const line of createInterface({ input: coordinator.stdout! })) {
      lines.push(JSON.parse(line) as Line);
      if (workers.length === 2 && lines.at(-1)!.step! >= 3) {
        workers.push(startCli(workerArgs(2)));
        workers[2]!.stderr!.on('data', (d: Buffer) => {
          joinerLog += d.toString();
          logs[2] += d.toString();
        });
      }
      if (lines.at(-1)!.type === 'summary') break;
    }
    assert.equal(await exited(coordinator), 0, stderr);
    for (const [i, w] of workers.entries()) assert.equal(await exited(w), 0, `worker ${i}:\n${logs[i]}`);
    const summary = lines.at(-1)!;
    assert.equal(summary.steps, STEPS);
    assert.ok(summary.restarts! >= 1);
    const joined = lines.filter((l) => l.type === 'step' && l.worker === 2);
    assert.ok(joined.length > 5, 'the new worker trained');
    // From its first step on, the new worker starts every step from the same weights and bank as the others.
    for (const l of joined) {
      const peers = lines.filter((x) => x.type === 'step' && x.step === l.step);
      assert.equal(new Set(peers.map((x) => x.params_digest)).size, 1, `parameters agree at step ${l.step}`);
      assert.equal(new Set(peers.map((x) => x.bank_digest)).size, 1, `banks agree at step ${l.step}`);
    }
    // Over NATS the joiner's replica comes from the stream, not from the peer it fetched the weights from.
    if (bank === 'NATS') assert.match(joinerLog, /rebuilt the bank from the stream at step \d+/);
    if (partitioned) {
      const rebuilt =
        nats.length > 0
          ? /rebuilt the bank shard of rank \d of 3 from the stream at step \d+/
          : /dealt the bank anew at step \d+: rank \d of 3 holds \d+ of \d+ keys/;
      for (const [i, log] of logs.entries()) assert.match(log, rebuilt, `worker ${i}`);
      for (const l of joined) {
        const peers = lines.filter((x) => x.type === 'step' && x.step === l.step);
        assert.equal(new Set(peers.map((x) => x.bank_shard_digest)).size, 3, `three shards at step ${l.step}`);
      }
      // The checkpoint's bank is the shards gathered: whole steps of the 3 members' keys, newest last, all K slots.
      await assertWholeStepsInBank(join(dir, 'run', 'checkpoint.ibck'), STEPS - job.bank.staleness, 3 * job.train.batch);
    }
  });
}

test('bank.mode partitioned without NATS: a member killed takes its shard with it, and the others stop with one line', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 1000, sites: 100, seed: 23 });
  const job = smallJob(data, join(dir, 'run'), { steps: STEPS });
  Object.assign(job, { engine: 'onnx' }, { bank: { ...job.bank, mode: 'partitioned' } });
  const cfg = writeConfig(dir, 'config', job);
  const coordinator = startCli(['coordinator', '--config', cfg, '--workers', '3', '--json']);
  t.after(() => coordinator.kill('SIGKILL'));
  const address = await listeningAddress(coordinator);
  const workerArgs = (i: number) => ['worker', '--coordinator', address, '--config', cfg, '--worker-id', `w${i}`];
  const workers = [startCli(workerArgs(0)), startCli(workerArgs(1)), startCli(workerArgs(2))];
  t.after(() => workers.forEach((w) => w.kill('SIGKILL')));
  const logs = ['', '', ''];
  workers.forEach((w, i) => w.stderr!.on('data', (d: Buffer) => (logs[i] += d.toString())));
  // The coordinator's output is read to its end, so that it never blocks on a full pipe.
  await new Promise<void>((resolve) =>
    createInterface({ input: coordinator.stdout! }).on('line', (line) => {
      if ((JSON.parse(line) as Line).step! >= 3) resolve();
    }),
  );
  workers[2]!.kill('SIGKILL');
  const codes = await Promise.all(workers.slice(0, 2).map(exited));
  for (const [i, code] of codes.entries()) {
    assert.equal(code, 1, `worker ${i} stops:\n${logs[i]}`);
    assert.doesNotMatch(logs[i]!, /\n\s+at /, 'one line, no stack trace');
    assert.match(
      logs[i]!,
      /bank\.mode partitioned: at step \d+ the members hold \d+ of the bank's \d+ keys \(a member left with its shard\), and rebuilding the rest needs the bank in a stream \(nats\.url\); restart the job from its checkpoint/,
    );
  }
});
