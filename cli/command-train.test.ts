import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../common/random.js';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { assertOneLineError, runCli } from '../testing/cli-harness.js';
import { writeIdxDataset } from '../testing/idx-dataset.js';
import { tempDir } from '../testing/test-helpers.js';
import { exited, startCli } from '../testing/cluster-test-helpers.js';

const cli = runCli;

const SMALL = ['--steps', '60', '--batch', '64', '--bank-size', '1000'];

test("train --workers 2: the summary carries rank 0 evaluation and the true MI, as one worker's does", async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  const meta = await writeSyntheticClickLog(data, { queries: 2000, sites: 200, seed: 4 });
  const r = await cli([
    'train',
    '--data',
    data,
    '--steps',
    '20',
    '--batch',
    '32',
    '--bank-size',
    '256',
    '--workers',
    '2',
    '--run-dir',
    join(dir, 'run'),
    '--json',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { type: string; workers: number; true_mi: number; eval: Record<string, number> };
  assert.equal(summary.type, 'summary');
  assert.equal(summary.workers, 2);
  assert.equal(summary.true_mi, meta.true_mi);
  for (const k of ['recall_at_10', 'mrr', 'oracle_recall_at_10']) assert.ok(summary.eval[k]! > 0 && summary.eval[k]! <= 1, `${k}: ${summary.eval[k]}`);
  // The two workers on this machine share its cores: the job's config gives each its half.
  const job = JSON.parse(readFileSync(join(dir, 'run', 'cluster-config.json'), 'utf8')) as { train: { threads: number } };
  assert.equal(job.train.threads, Math.max(1, Math.floor(availableParallelism() / 2)));
});

test('train --json on a synthetic log: JSON only, the InfoNCE bound rises and stays under the ceiling', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  const meta = await writeSyntheticClickLog(data, { queries: 3000, sites: 300, seed: 3 });
  const r = await cli(['train', '--data', data, ...SMALL, '--run-dir', join(dir, 'run'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const steps = lines.filter((l) => l.type === 'step') as unknown as {
    step: number;
    worker: number;
    loss: number;
    ceiling: number;
    temperature: number;
    examples_per_s: number;
    bounds: Record<string, number>;
  }[];
  const summary = lines.at(-1) as {
    type: string;
    steps: number;
    true_mi: number;
    ceiling: number;
    bounds: Record<string, number>;
    eval: Record<string, number>;
    skipped_inputs: object;
  };
  assert.equal(summary.type, 'summary');
  assert.equal(lines.length, steps.length + 1, 'only step lines and one summary on stdout');
  assert.ok(steps.length >= 6);
  for (const s of steps) {
    assert.equal(s.worker, 0);
    for (const k of ['infonce', 'nwj', 'dv', 'jsd']) assert.ok(Number.isFinite(s.bounds[k]), `${k} at step ${s.step}`);
    assert.ok(s.bounds.infonce! <= s.ceiling + 1e-9, `InfoNCE ${s.bounds.infonce} above its ceiling ${s.ceiling}`);
    assert.ok(s.examples_per_s > 0 && s.temperature > 0 && Number.isFinite(s.loss));
  }
  const first = steps[0]!.bounds.infonce!;
  assert.ok(summary.bounds.infonce! > first + 0.5, `bound should rise: first ${first}, final ${summary.bounds.infonce}`);
  assert.ok(Math.abs(summary.ceiling - Math.log(1001)) < 1e-9);
  assert.equal(summary.true_mi, meta.true_mi);
  for (const k of ['recall_at_1', 'recall_at_10', 'mrr', 'popularity_recall_at_10']) assert.ok(summary.eval[k]! >= 0 && summary.eval[k]! <= 1, k);
  assert.ok(summary.eval.recall_at_10! > summary.eval.popularity_recall_at_10!, 'beats the popularity baseline');
  assert.deepEqual(summary.skipped_inputs, {});
  for (const f of ['run.jsonl', 'config.json', 'checkpoint.ibck']) assert.ok(existsSync(join(dir, 'run', f)), f);
});

test('resume continues from the checkpoint to the requested step', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 1000, sites: 100, seed: 4 });
  const common = ['--data', data, '--batch', '32', '--bank-size', '200', '--json'];
  const a = await cli(['train', ...common, '--steps', '20', '--run-dir', join(dir, 'a')]);
  assert.equal(a.code, 0, a.stderr);
  const b = await cli(['train', ...common, '--steps', '30', '--resume', join(dir, 'a', 'checkpoint.ibck'), '--run-dir', join(dir, 'b')]);
  assert.equal(b.code, 0, b.stderr);
  const lines = b.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; step?: number; steps?: number });
  assert.equal(lines.at(-1)!.steps, 30);
  assert.equal(lines.find((l) => l.type === 'step')!.step, 21, 'the first step after resuming is 21');
  const bad = await cli(['train', ...common, '--bank-size', '100', '--resume', join(dir, 'a', 'checkpoint.ibck'), '--run-dir', join(dir, 'c')]);
  assertOneLineError(bad, /bank/);
});

test('resume is exact: with bank.staleness 2 the checkpoint carries the keys still due, and every later step matches a run without a stop', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 1000, sites: 100, seed: 5 });
  const config = join(dir, 'stale.yaml');
  writeFileSync(config, 'bank:\n  staleness: 2\ntrain:\n  log_every: 1\neval:\n  enabled: false\n');
  const common = ['--config', config, '--data', data, '--batch', '32', '--bank-size', '200', '--json'];
  const digests = (stdout: string) =>
    new Map(
      stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { type: string; step: number; bank_digest: string })
        .filter((l) => l.type === 'step')
        .map((l) => [l.step, l.bank_digest]),
    );
  const whole = await cli(['train', ...common, '--steps', '20', '--run-dir', join(dir, 'whole')]);
  assert.equal(whole.code, 0, whole.stderr);
  const first = await cli(['train', ...common, '--steps', '10', '--run-dir', join(dir, 'first')]);
  assert.equal(first.code, 0, first.stderr);
  const rest = await cli(['train', ...common, '--steps', '20', '--resume', join(dir, 'first', 'checkpoint.ibck'), '--run-dir', join(dir, 'rest')]);
  assert.equal(rest.code, 0, rest.stderr);
  const a = digests(whole.stdout);
  const b = digests(rest.stdout);
  assert.deepEqual(
    [...b.keys()],
    Array.from({ length: 10 }, (_, i) => 11 + i),
  );
  for (const [step, digest] of b) assert.equal(digest, a.get(step), `bank at step ${step}`);
});

test('malformed click-log lines are skipped, counted and reported with file:line; training goes on', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'mixed.tsv');
  const good: string[] = [];
  for (let i = 0; i < 400; i++) good.push(`query ${i % 40} shoes\tsite${i % 20}.com\t${1 + (i % 3)}`);
  const bad = ['only\ttwo', 'q\t\t3', 'q\ts\tmany', 'q\ts\t-1', 'q\ts\tInfinity', 'x'.repeat(2_000_000) + '\ts\t1'];
  writeFileSync(data, [...good.slice(0, 200), ...bad, ...good.slice(200)].join('\n') + '\n');
  writeFileSync(join(dir, 'invalid-utf8.tsv'), Buffer.concat([Buffer.from('q\t'), Buffer.from([0xff, 0xfe]), Buffer.from('\t1\n')]));
  const r = await cli(['train', '--data', data, '--steps', '5', '--batch', '16', '--bank-size', '64', '--run-dir', join(dir, 'run'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { skipped_inputs: Record<string, number> };
  assert.deepEqual(summary.skipped_inputs, {
    wrong_column_count: 1,
    empty_field: 1,
    non_numeric_clicks: 1,
    negative_clicks: 1,
    non_finite_clicks: 1,
    line_too_long: 1,
  });
  assert.match(r.stderr, new RegExp(`${data.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:201: skipped \\(wrong_column_count\\)`));
});

test('bad input stops with one clear line and a non-zero exit, never a stack trace', async (t) => {
  const dir = tempDir(t);
  const empty = join(dir, 'nothing-valid.tsv');
  writeFileSync(empty, 'a\tb\n\tc\t1\n');
  assertOneLineError(await cli(['train', '--data', empty, '--steps', '1']), /no valid click-log line/);

  const idxDir = join(dir, 'idx');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(idxDir);
  for (const name of ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) {
    writeFileSync(join(idxDir, name), Buffer.from([0x12, 0x34, 0x08, 0x01, 0, 0, 0, 1, 0]));
  }
  assertOneLineError(await cli(['train', '--data', idxDir, '--steps', '1']), /magic/);

  const cfg = join(dir, 'bad.yaml');
  writeFileSync(cfg, 'train:\n  stepz: 3\n');
  assertOneLineError(await cli(['train', '--config', cfg, '--data', empty]), /unknown field "train\.stepz".*did you mean "train\.steps"/);
  writeFileSync(cfg, 'bank:\n  size: 0\n');
  assertOneLineError(await cli(['train', '--config', cfg, '--data', empty]), /bank\.size/);
  assertOneLineError(await cli(['train', '--data', empty, '--steps', 'ten']), /--steps/);
  assertOneLineError(await cli(['train', '--data', join(dir, 'missing.tsv')]), /missing\.tsv/);
  assertOneLineError(await cli(['train', '--bogus']), /bogus/);
});

test('network flag mistakes of train, coordinator and worker are one line each', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 200, sites: 20, seed: 6 });
  assertOneLineError(
    await cli(['worker', '--coordinator', '127.0.0.1:1', '--data', data, '--peer-port', '70000']),
    /--peer-port must be a port number in \[0, 65535\], got "70000"/,
  );
  assertOneLineError(
    await cli(['worker', '--coordinator', '127.0.0.1:1', '--data', data, '--bind', '192.0.2.1']),
    /cannot serve Peer on 192\.0\.2\.1:0 \(--bind, --peer-port, --data-port\): listen EADDRNOTAVAIL/,
  );
  assertOneLineError(await cli(['coordinator', '--data', data, '--port', '99999']), /--port must be a port number in \[0, 65535\]/);
  assertOneLineError(
    await cli(['coordinator', '--data', data, '--require-token'], { INFOBOUND_TOKEN: '' }),
    /^infobound: coordinator: --require-token, but no join token: set INFOBOUND_TOKEN/,
  );
  assertOneLineError(
    await cli(['train', '--data', data, '--workers', '2', '--metrics-port', '65535']),
    /--metrics-port with --workers 2 needs ports P to P\+2/,
  );
  assertOneLineError(await cli(['train', '--data', data, '--metrics-port', 'x']), /--metrics-port must be a port number/);
});

test('an optional backend that is not installed gives one line saying how to get it', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  writeFileSync(data, 'q\ts\t1\n');
  assertOneLineError(await cli(['train', '--data', data, '--backend', 'tensorflow-gpu']), /@tensorflow\/tfjs-node-gpu/);
});

test('--run-dir and --resume are checked like the config fields they replace, in every command that takes them', async (t) => {
  const data = join(tempDir(t), 'clicks.tsv');
  writeFileSync(data, 'q\ts\t1\n');
  const emptyRunDir = /^infobound: --run-dir must be a non-empty string or null, got ""$/;
  assertOneLineError(await cli(['train', '--data', data, '--run-dir', '']), emptyRunDir);
  assertOneLineError(await cli(['coordinator', '--data', data, '--run-dir', '']), emptyRunDir);
  assertOneLineError(await cli(['worker', '--coordinator', '127.0.0.1:1', '--data', data, '--run-dir', '']), emptyRunDir);
  assertOneLineError(await cli(['train', '--data', data, '--resume', '']), /^infobound: --resume must be a non-empty string or null, got ""$/);
});

test('quality on a generated click log: bound ≥ 70% of min(true MI, ceiling), Recall@10 ≥ 80% of the oracle', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  const gen = await cli(['gen-clicklog', '--out', data, '--queries', '5000', '--sites', '500', '--seed', '7']);
  assert.equal(gen.code, 0, gen.stderr);
  const meta = JSON.parse(gen.stdout) as { true_mi: number; oracle_recall_at_10: number };
  const r = await cli(['train', '--data', data, '--steps', '300', '--run-dir', join(dir, 'run'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
    bounds: { infonce: number };
    max_infonce: number;
    ceiling: number;
    true_mi: number;
    eval: Record<string, number>;
  };
  assert.equal(s.true_mi, meta.true_mi);
  assert.ok(s.max_infonce <= s.ceiling);
  const target = 0.7 * Math.min(meta.true_mi, s.ceiling);
  assert.ok(s.bounds.infonce >= target, `InfoNCE ${s.bounds.infonce} < 70% of min(true MI ${meta.true_mi}, ceiling ${s.ceiling})`);
  assert.equal(s.eval.oracle_recall_at_10, meta.oracle_recall_at_10);
  assert.ok(s.eval.recall_at_10! >= 0.8 * meta.oracle_recall_at_10, `Recall@10 ${s.eval.recall_at_10} < 80% of the oracle's ${meta.oracle_recall_at_10}`);
  assert.ok(s.eval.recall_at_10! > s.eval.popularity_recall_at_10!);
});

test('the onnx engine (the default) and the tfjs engine both train a click log; a bank past the wasm heap and a device that is not there are one line each', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 4000, sites: 400, seed: 8 });
  for (const engine of [[], ['--engine', 'tfjs']]) {
    const r = await cli(['train', '--data', data, ...SMALL, ...engine, '--run-dir', join(dir, engine.length === 0 ? 'default' : 'tfjs'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
      steps: number;
      bounds: { infonce: number };
      initial_bounds: { infonce: number };
      ceiling: number;
    };
    assert.equal(summary.steps, 60);
    assert.ok(
      summary.bounds.infonce > summary.initial_bounds.infonce + 0.5,
      `${engine}: the bound rises: ${summary.initial_bounds.infonce} → ${summary.bounds.infonce}`,
    );
    assert.ok(summary.bounds.infonce < summary.ceiling);
  }
  const config = JSON.parse(readFileSync(join(dir, 'default', 'config.json'), 'utf8')) as { engine: string };
  assert.equal(config.engine, 'onnx');
  // The wasm heap stops at 4 GiB: the bank it cannot hold is one line naming the engine that can.
  assertOneLineError(
    await cli(['train', '--data', data, '--steps', '1', '--batch', '256', '--bank-size', '524288', '--engine', 'tfjs', '--run-dir', join(dir, 'heap')]),
    /^infobound: --engine tfjs: the wasm backend ran out of its 4 GiB heap \(a bank of 524288 keys at a batch of 256\); use --engine onnx, or a smaller bank\.size$/,
  );

  // Where a GPU is, these train; here each must say, on its last line, what is missing and to use
  // --device cpu, and leave the run directory it was pointed at as it was.
  const runDir = join(dir, 'default');
  // Its files (the prepared dataset beside them is kept by a second prepare of the same log).
  const files = () =>
    new Map(
      readdirSync(runDir, { withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => [e.name, readFileSync(join(runDir, e.name))]),
    );
  const before = files();
  for (const device of ['webgpu', 'cuda']) {
    const r = await cli(['train', '--data', data, '--steps', '2', '--batch', '16', '--bank-size', '32', '--device', device, '--run-dir', runDir]);
    if (r.code !== 0) {
      assert.match(r.stderr.trim().split('\n').at(-1)!, new RegExp(`^infobound: --device ${device}: .*; use --device cpu$`));
      assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
      assert.deepEqual(files(), before, `--device ${device}: the run directory is untouched`);
    }
  }
});

test('images without examples or too small for the model, tables past memory, a run directory under a file: one line each', async (t) => {
  const dir = tempDir(t);
  const rng = new Rng(4);
  for (const [name, shape] of [
    ['empty', { train: 0, test: 10, rows: 28, cols: 28 }],
    ['tiny', { train: 10, test: 10, rows: 1, cols: 1 }],
  ] as const) {
    mkdirSync(join(dir, name));
    await writeIdxDataset(join(dir, name), shape, rng);
  }
  assertOneLineError(await cli(['train', '--data', join(dir, 'empty'), '--run-dir', join(dir, 'r1')]), /empty: the training images file holds no images$/);
  assertOneLineError(
    await cli(['train', '--data', join(dir, 'tiny'), '--run-dir', join(dir, 'r2')]),
    /tiny: images of 1×1 give an odd conv1 map; use sizes ≡ 0 mod 4$/,
  );

  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 300, sites: 50, seed: 2 });
  const huge = join(dir, 'huge.yaml');
  writeFileSync(huge, 'clicklog:\n  hash_buckets: 16777216\n  embedding_dim: 512\n');
  assertOneLineError(
    await cli(['train', '--config', huge, '--data', data, '--run-dir', join(dir, 'r3')]),
    /^infobound: the click-log tables \(clicklog\.hash_buckets 16777216 × clicklog\.embedding_dim 512\) need 96\.3 GiB, in arrays of 8589934592 floats; lower clicklog\.hash_buckets or clicklog\.embedding_dim/,
  );
  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  assertOneLineError(
    await cli(['train', '--data', data, '--steps', '1', '--run-dir', join(file, 'run')]),
    /^infobound: --run-dir .*a-file\/run: cannot create the directory: ENOTDIR$/,
  );
});

test('train --json whose reader goes away (| head -1) ends quietly, exit code 0, no stack trace', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 500, sites: 50, seed: 5 });
  const child = startCli(['train', '--data', data, '--steps', '2000', '--batch', '32', '--bank-size', '256', '--run-dir', join(dir, 'run'), '--json']);
  t.after(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  // The first step line, then the reader closes its end, as head does.
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  child.stdout!.destroy();
  assert.equal(await exited(child), 0, stderr);
  assert.doesNotMatch(stderr, /EPIPE|\n\s+at /);
});
