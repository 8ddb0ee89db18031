import test, { type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { readCheckpoint } from '../common/checkpoint-file.js';
import type { Config } from '../common/config/mod.js';
import type { StepLine } from '../common/run-lines.js';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { expectArraysClose, tempDir } from '../testing/test-helpers.js';
import { BIN, exited, freePort, smallJob, startCli, startJob, writeConfig } from '../testing/cluster-test-helpers.js';
import { NatsTestServer } from '../testing/nats-test-server.js';
import { assertWholeStepsInBank } from '../testing/checkpoint-bank.js';

const run = promisify(execFile);
const STEPS = 6;
/** Smaller than the keys of the run (STEPS·W·B), not a multiple of any W: the queue wraps and shards are uneven. */
const BANK = 151;

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
      for (const name of ['infonce', 'nwj', 'dv', 'jsd'] as const) expectArraysClose([p.bounds[name]], [r.bounds[name]], { atol: 1e-3, rtol: 1e-4 });
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

type Line = { type: string; step?: number; worker?: number; loss?: number; bounds?: Record<string, number>; steps?: number };

/** Coordinator and `workers` worker processes on `cfg` until the summary (or, with `killAt`, until a step line of that step): the step lines. */
async function cluster(t: TestContext, cfg: string, workers: number, killAt?: number): Promise<{ lines: Line[]; logs: string[] }> {
  const port = String(await freePort());
  const coordinator = startCli(['coordinator', '--config', cfg, '--workers', String(workers), '--json', '--port', port]);
  t.after(() => coordinator.kill('SIGKILL'));
  const members = Array.from({ length: workers }, (_, i) =>
    startCli(['worker', '--coordinator', `127.0.0.1:${port}`, '--config', cfg, '--worker-id', `w${i}`]),
  );
  t.after(() => members.forEach((w) => w.kill('SIGKILL')));
  const logs = members.map(() => '');
  members.forEach((w, i) => w.stderr!.on('data', (d: Buffer) => (logs[i] += d.toString())));
  const lines: Line[] = [];
  for await (const text of createInterface({ input: coordinator.stdout! })) {
    lines.push(JSON.parse(text) as Line);
    if (lines.at(-1)!.type === 'summary' || (killAt !== undefined && lines.at(-1)!.step! >= killAt)) break;
  }
  if (killAt !== undefined) for (const p of [coordinator, ...members]) p.kill('SIGKILL');
  await Promise.all([coordinator, ...members].map(exited));
  return { lines: lines.filter((l) => l.type === 'step'), logs };
}

test('a 3-worker partitioned job stopped whole resumes from its checkpoint on 2 and on 4 workers, as the replicated bank would', {
  timeout: 180_000,
}, async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 2000, sites: 200, seed: 8 });
  const config = (mode: Config['bank']['mode']) => {
    const c = jobConfig(data, join(dir, 'run'), mode, false);
    Object.assign(c.train, { steps: 7, checkpoint_every: 3 });
    return writeConfig(dir, `config-${mode}`, c);
  };
  // Three workers until step 5: the checkpoint of step 3 (written as step 4 ran) holds the whole bank.
  await cluster(t, config('partitioned'), 3, 5);
  const saved = join(dir, 'stopped');
  cpSync(join(dir, 'run'), saved, { recursive: true });
  for (const workers of [2, 4]) {
    const resumed: Record<string, Line[]> = {};
    for (const mode of ['replicated', 'partitioned'] as const) {
      rmSync(join(dir, 'run'), { recursive: true, force: true });
      cpSync(saved, join(dir, 'run'), { recursive: true });
      const { lines, logs } = await cluster(t, config(mode), workers);
      for (const log of logs) assert.match(log, /loaded the checkpoint of step 3\b/);
      resumed[mode] = lines.sort((a, b) => a.step! - b.step! || a.worker! - b.worker!);
    }
    const [r, p] = [resumed.replicated!, resumed.partitioned!];
    assert.deepEqual(
      p.map((l) => [l.step, l.worker]),
      r.map((l) => [l.step, l.worker]),
    );
    assert.equal(p[0]!.step, 4, 'training goes on from step 4');
    p.forEach((l, i) => {
      expectArraysClose([l.loss!], [r[i]!.loss!], { atol: 1e-4, rtol: 1e-4 });
      for (const name of ['infonce', 'dv']) expectArraysClose([l.bounds![name]!], [r[i]!.bounds![name]!], { atol: 1e-3, rtol: 1e-4 });
    });
  }
});

test('a worker killed mid-run, bank partitioned over NATS: the survivors rebuild their shards from the stream and finish with every key', {
  timeout: 120_000,
}, async (t) => {
  const nats = await NatsTestServer.start(t);
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 1000, sites: 100, seed: 24 });
  const job = jobConfig(data, join(dir, 'run'), 'partitioned', false);
  Object.assign(job.train, { steps: 40 });
  job.nats.url = nats.url;
  const { coordinator, workers, log } = await startJob(t, writeConfig(dir, 'config', job), 3, ['--heartbeat-timeout', '1000']);
  const logs = workers.map(() => '');
  workers.forEach((w, i) => w.stderr!.on('data', (d: Buffer) => (logs[i] += d.toString())));
  let killed = false;
  const lines: Line[] = [];
  for await (const text of createInterface({ input: coordinator.stdout! })) {
    lines.push(JSON.parse(text) as Line);
    if (!killed && lines.at(-1)!.step! >= 8) {
      killed = true;
      workers[2]!.kill('SIGKILL');
    }
    if (lines.at(-1)!.type === 'summary') break;
  }
  assert.equal(await exited(coordinator), 0, log());
  for (const i of [0, 1]) {
    assert.equal(await exited(workers[i]!), 0, logs[i]);
    assert.match(logs[i]!, /rebuilt the bank shard of rank \d of 2 from the stream at step \d+/);
  }
  assert.equal(lines.at(-1)!.steps, 40);
  // The checkpoint's bank, gathered from the two rebuilt shards: the last K keys, whole steps of both members' keys.
  await assertWholeStepsInBank(join(dir, 'run', 'checkpoint.ibck'), 40, 2 * job.train.batch);
});
