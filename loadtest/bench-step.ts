import { randomBytes } from 'node:crypto';
/**
 * `npm run bench:step [-- --json] [--steps N] [--backend NAME] [--engine tfjs|onnx|both] [--only clicklog|images]`
 *
 * Times the training step (`contrastiveStep`) of the default click-log and image configs with a full
 * bank on each engine, converts it to effective matMul GFLOP/s, and prints it next to that engine's
 * baseline measured in the same run: a plain 1024×1024·1024×1024 matMul (`tf.matMul` on the tfjs
 * backend; an ONNX MatMul on ONNX Runtime's CPU engine with every core). The goal is a step at ≥ 50%
 * of that rate; below it, a breakdown of where a tfjs step's time goes is printed (not with --json).
 * A config the onnx engine does not run yet is reported as such.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { availableParallelism } from 'node:os';
import { BACKENDS, initBackend, type BackendName } from '../common/backend.js';
import { defaultConfig, ENGINES, type ClicklogConfig, type Config, type Engine, type ImagesConfig } from '../common/config/mod.js';
import { UserError } from '../common/user-error.js';
import { GraphSession } from '../worker/engine/onnx/graph-session.js';
import { GraphBuilder } from '../worker/engine/onnx/graph-builder.js';
import { encodeModel } from '../worker/engine/onnx/onnx-model.js';
import { matMul as onnxMatMul } from '../worker/engine/onnx/ops/matmul.js';
import { Rng } from '../common/random.js';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { logitBias } from '../worker/bank/logit-bias.js';
import { writeIdxDataset } from '../testing/idx-dataset.js';
import { FASHION_MNIST_DIR } from '../worker/data/idx-reader.js';
import { im2col } from '../worker/image/im2col.js';
import type { ClickBatch } from '../worker/train/clicklog-model.js';
import { ClickLogTask } from '../worker/train/clicklog-task.js';
import { contrastiveStep, type StepContext } from '../worker/train/contrastive-step.js';
import type { ImageBatch } from '../worker/train/image-model.js';
import { ImageTask } from '../worker/train/image-task.js';
import { createStepContext } from '../worker/train/step-context.js';
import { replicatedBank } from '../worker/bank/member-bank.js';
import { openBankTransport } from '../worker/bank/open-bank-transport.js';
import type { TrainingTask } from '../worker/train/training-task.js';

/** The embedded bank, as a single-process run opens it. */
const BENCH_BANK = { job: 'bench', runId: 'bench', bankKey: randomBytes(32), clientName: 'bench-step' };

/** The target: a step at this fraction of the plain-matMul rate. */
const GOAL_RATIO = 0.5;
/** Steps whose pieces are timed, and steps run under tf.profile, for the breakdown. */
const PIECE_STEPS = 5;
const KERNEL_STEPS = 3;

type ConfigName = 'clicklog' | 'images';

/** Where a side piece runs inside the step: the two timed pieces that call pure JS helpers. */
type Within = 'momentumKeys' | 'gradients';

/**
 * A pure helper the step calls from inside a timed piece (an imported function, so it cannot be
 * wrapped): timed on the side with the same arguments and shown as part of that piece.
 */
interface SidePiece<B> {
  label: string;
  within: Within;
  run(batch: B): void;
}

/** One benchmarked config: its task, step context and the running step number. */
interface Run<B> {
  name: ConfigName;
  config: Config;
  task: TrainingTask<B>;
  ctx: StepContext;
  step: number;
  /** Effective matMul FLOPs of one step. */
  flops: number;
  sides: SidePiece<B>[];
}

/** The `--json` object of one config (the field names are an interface). */
interface Result {
  config: ConfigName;
  engine: Engine;
  backend: BackendName;
  batch: number;
  bank_size: number;
  ms_per_step: number;
  examples_per_s: number;
  step_gflops: number;
  matmul_gflops: number;
  ratio: number;
}

/** 2·m·k·n: the multiply-adds of an (m×k)·(k×n) product, two FLOPs each. */
function mm(m: number, k: number, n: number): number {
  return 2 * m * k * n;
}

/** The B×(B+K) InfoNCE products of `infonceBankLoss` with constant (momentum) positives: forward and dq. */
function bankLossFlops(b: number, k: number, d: number): number {
  return (
    mm(b, d, b + k) + // logits q·[kpos; bank]ᵀ
    mm(b, b + k, d) // dq: P·[kpos; bank]
  );
}

/** MatMul FLOPs of one click-log step (ClickLogModel, batch b, bank k). */
function clickLogStepFlops(b: number, k: number, c: ClicklogConfig): number {
  const { embedding_dim: e, hidden_dim: h, output_dim: d } = c;
  // One tower's forward: pooled rows → hidden → output.
  const tower = mm(b, e, h) + mm(b, h, d);
  return (
    3 * tower + // query tower: forward, weight grads and input grads (rowGradient needs the pooled rows' grads)
    3 * tower + // online site tower, trained by the site→query term: the same three
    tower + // momentum key tower: forward only
    bankLossFlops(b, k, d) +
    3 * mm(b, d, b) // site→query scores s·qᵀ, and backward dS·q and sᵀ·dS (both towers train)
  );
}

/** MatMul FLOPs of one image step (ImageModel: conv1 5×5 stride 2 pad 2 as im2col, conv2 2×2 stride 2 as space-to-depth, MLP head). */
function imageStepFlops(b: number, k: number, rows: number, cols: number, im: ImagesConfig): number {
  const { channels: c, hidden_dim: h, output_dim: d } = im;
  const positions = (Math.floor((rows + 4 - 5) / 2) + 1) * (Math.floor((cols + 4 - 5) / 2) + 1);
  const conv1 = mm(b * positions, 25, c);
  const conv2 = mm((b * positions) / 4, 4 * c, 2 * c);
  const head = mm(b, (positions / 4) * 2 * c, h) + mm(b, h, d);
  const forward = conv1 + conv2 + head;
  return (
    forward + // query encoder
    conv1 + // conv1 backward: weight grad only, its input is the im2col patches
    2 * (conv2 + head) + // weight and input grads of the other layers
    forward + // momentum key encoder: forward only
    bankLossFlops(b, k, d)
  );
}

/** GFLOP/s of a plain 1024² matMul on the current backend, after warm-up: the median product. */
function matMulGflops(): number {
  const n = 1024;
  const a = tf.randomNormal([n, n]) as tf.Tensor2D;
  const b = tf.randomNormal([n, n]) as tf.Tensor2D;
  const once = () => {
    const t0 = performance.now();
    tf.matMul(a, b).dispose();
    return performance.now() - t0;
  };
  for (let i = 0; i < 3; i++) once();
  // At least 10 products over at least 1 s; the median, because the other processes on a shared machine
  // slow some products down and the baseline should be what the backend does, not what they leave.
  const times: number[] = [];
  const t0 = performance.now();
  while (times.length < 10 || performance.now() - t0 < 1000) times.push(once());
  tf.dispose([a, b]);
  times.sort((x, y) => x - y);
  return mm(n, n, n) / (times[times.length >> 1]! / 1000) / 1e9;
}

/** GFLOP/s of a plain 1024² MatMul on ONNX Runtime's CPU engine with every core, after warm-up: the median product. */
async function onnxMatMulGflops(): Promise<number> {
  const n = 1024;
  const g = new GraphBuilder('bench-matmul');
  g.output(onnxMatMul(g, g.input('a', [n, n]), g.input('b', [n, n])));
  const session = await GraphSession.open(encodeModel(g), 'bench-matmul', { threads: availableParallelism() });
  const rng = new Rng(1);
  const feeds = {
    a: { data: Float32Array.from({ length: n * n }, () => rng.normal()), dims: [n, n] },
    b: { data: Float32Array.from({ length: n * n }, () => rng.normal()), dims: [n, n] },
  };
  const once = async () => {
    const t0 = performance.now();
    await session.run(feeds);
    return performance.now() - t0;
  };
  for (let i = 0; i < 3; i++) await once();
  const times: number[] = [];
  const t0 = performance.now();
  while (times.length < 10 || performance.now() - t0 < 1000) times.push(await once());
  await session.release();
  times.sort((x, y) => x - y);
  return mm(n, n, n) / (times[times.length >> 1]! / 1000) / 1e9;
}

/** The PyTorch reference of the click-log step (a script of ours), run with Debian's python3-torch. */
const PYTORCH_STEP = fileURLToPath(new URL('../../loadtest/pytorch-clicklog-step.py', import.meta.url));
/** Debian's interpreter, where python3-torch installs. */
const PYTHON = '/usr/bin/python3';

/** One PyTorch reference figure. */
interface PytorchResult {
  threads: number;
  ms_per_step: number;
  examples_per_s: number;
  torch: string;
  blas: string;
}

/** The PyTorch click-log step at `threads` threads, or why it could not run. */
function pytorchStep(threads: number, steps: number): PytorchResult | string {
  const r = spawnSync(PYTHON, [PYTORCH_STEP, '--threads', String(threads), '--steps', String(steps), '--json'], { encoding: 'utf8', timeout: 600_000 });
  if (r.error !== undefined) return `${PYTHON} not found`;
  if (/No module named 'torch'/.test(r.stderr)) return 'python3-torch is not installed (apt-get install python3-torch libopenblas0-openmp)';
  if (r.status !== 0) return `it failed: ${r.stderr.trim().split('\n').at(-1)}`;
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as PytorchResult;
}

async function setUp(name: ConfigName, engine: Engine, backend: BackendName, tmp: string, say: (line: string) => void): Promise<Run<unknown>> {
  const config = defaultConfig();
  config.engine = engine;
  config.backend = backend;
  config.kind = name;
  return name === 'clicklog' ? setUpClickLog(config, tmp, say) : setUpImages(config, tmp, say);
}

async function setUpClickLog(config: Config, tmp: string, say: (line: string) => void): Promise<Run<ClickBatch>> {
  config.data = join(tmp, 'clicks.tsv');
  await writeSyntheticClickLog(config.data, { queries: 20000, sites: 2000, seed: 1 });
  say('clicklog: synthetic click log, 20000 queries, 2000 sites, seed 1');
  const task = await ClickLogTask.load(config);
  const flops = clickLogStepFlops(config.train.batch, config.bank.size, config.clicklog);
  return {
    name: 'clicklog',
    config,
    task,
    ctx: createStepContext(config, task, await openBankTransport(config, task.model, BENCH_BANK)),
    step: 0,
    flops,
    sides: [],
  };
}

async function setUpImages(config: Config, tmp: string, say: (line: string) => void): Promise<Run<ImageBatch>> {
  if (existsSync(FASHION_MNIST_DIR)) {
    config.data = FASHION_MNIST_DIR;
    say(`images: Fashion-MNIST from ${FASHION_MNIST_DIR}`);
  } else {
    config.data = join(tmp, 'idx');
    await mkdir(config.data);
    await writeIdxDataset(config.data, { train: 4096, test: 512, rows: 28, cols: 28 }, new Rng(1));
    say(`images: ${FASHION_MNIST_DIR} is absent, so random 28×28 images (synthetic IDX, 4096 train + 512 test); same shapes, same cost per step`);
  }
  const task = await ImageTask.load(config);
  const { rows, cols } = task.train;
  const flops = imageStepFlops(config.train.batch, config.bank.size, rows, cols, config.images);
  // ImageModel.forward unfolds each view with im2col in JS: the key view in momentumKeys, the query view
  // inside the gradient closure (5×5 kernel, stride 2, pad 2, as in image-model.ts).
  const patches = (images: Float32Array, n: number) => im2col(images, n, rows, cols, 5, 2, 2);
  const sides: SidePiece<ImageBatch>[] = [
    { label: 'im2col of the key view (JS)', within: 'momentumKeys', run: (b) => patches(b.key, b.indices.length) },
    { label: 'im2col of the query view (JS)', within: 'gradients', run: (b) => patches(b.query, b.indices.length) },
  ];
  return {
    name: 'images',
    config,
    task,
    ctx: createStepContext(config, task, await openBankTransport(config, task.model, BENCH_BANK)),
    step: 0,
    flops,
    sides,
  };
}

/** One training step as the trainer runs it (bounds on every log_every-th step); returns its wall ms. */
async function runStep(run: Run<unknown>): Promise<number> {
  run.step++;
  const batch = await run.task.batchAt(run.step * run.config.train.batch, run.config.train.batch);
  const t0 = performance.now();
  await contrastiveStep(run.task.model, batch, run.step, run.ctx, run.step % run.config.train.log_every === 0);
  return performance.now() - t0;
}

/** Wall ms of each timed step, after warm-up steps have filled the bank. */
async function timeSteps(run: Run<unknown>, steps: number): Promise<{ perStep: number[]; logged: boolean[] }> {
  const { bank } = run.ctx;
  while (bank.filled < bank.capacity) await runStep(run);
  const perStep: number[] = [];
  const logged: boolean[] = [];
  for (let i = 0; i < steps; i++) {
    perStep.push(await runStep(run));
    logged.push(run.step % run.config.train.log_every === 0);
  }
  return { perStep, logged };
}

/** Replaces `obj[key]` (a method) by a version that adds its synchronous wall time to `into[label]`; returns the undo. */
function instrument<T extends object>(obj: T, key: keyof T & string, label: string, into: Map<string, number>): () => void {
  const had = Object.hasOwn(obj, key);
  const original = obj[key] as (...args: unknown[]) => unknown;
  (obj as Record<string, unknown>)[key] = function (this: unknown, ...args: unknown[]) {
    const t0 = performance.now();
    try {
      // An async method (the bank transport's publish) is timed up to its first await: the embedded
      // transport enqueues synchronously, so that is all of its work.
      return original.apply(this, args);
    } finally {
      into.set(label, (into.get(label) ?? 0) + performance.now() - t0);
    }
  };
  return () => {
    if (had) (obj as Record<string, unknown>)[key] = original;
    else delete (obj as Record<string, unknown>)[key];
  };
}

/** One row of the breakdown: a piece of the step, or (indented) a part of the piece above it. */
interface PieceRow {
  label: string;
  ms: number;
  part: boolean;
}

/** Where a plain (unlogged) step's wall time goes, in ms per step, pieces in step order. */
async function timePieces<B>(run: Run<B>, steps: number): Promise<{ total: number; rows: PieceRow[]; dataMs: number }> {
  const { ctx, task, config } = run;
  const model = task.model;
  const acc = new Map<string, number>();
  const labels: Record<Within, string> = { momentumKeys: 'momentumKeys (key encoder forward)', gradients: 'forward + backward (engine.gradients)' };
  const undo = [
    instrument(model, 'momentumKeys', labels.momentumKeys, acc),
    instrument(model.online, 'tensors', 'dense params → tensors', acc),
    instrument(model, 'sparseInputs', 'sparse pooling (query + site rows → tensors)', acc),
    instrument(replicatedBank(ctx.bank), 'tensors', 'bank upload (K×d keys and d×K keysT)', acc),
    // The step takes its gradients through the engine singleton, so timing that call times forward and backward.
    instrument(tf.engine(), 'gradients', labels.gradients, acc),
    instrument(model.online, 'flattenGrads', 'flattenGrads (dense grads → flat array)', acc),
    instrument(model, 'sparseRowGrads', 'rowGradient (sparse row grads)', acc),
    instrument(ctx.adam, 'apply', `Adam over the ${model.online.size} flat params`, acc),
    instrument(model, 'applySparse', 'sparse row optimiser (Adagrad + momentum rows)', acc),
    instrument(model, 'momentumUpdate', 'momentum EMA of the key tower', acc),
    instrument(replicatedBank(ctx.bank), 'enqueueStep', 'bank enqueue', acc),
  ];
  // logitBias runs inside the gradient closure; like the model's side pieces it is pure, so the same
  // call on the same bank state just before the step costs what it costs inside.
  const sides: SidePiece<B>[] = [
    {
      label: 'logitBias build (B×(B+K) in JS)',
      within: 'gradients',
      run: (batch) =>
        logitBias(replicatedBank(ctx.bank), {
          positiveIds: model.positiveIds(batch),
          logQ: ctx.logQ,
          inBatchNegatives: ctx.inBatchNegatives,
          maskAccidentalHits: ctx.maskAccidentalHits,
        }),
    },
    ...run.sides,
  ];
  const sideMs = new Map<SidePiece<B>, number>();
  let total = 0;
  let dataMs = 0;
  try {
    for (let i = 0; i < steps; i++) {
      // Plain steps only: the logged-step surcharge is reported from the timed run.
      run.step += (run.step + 1) % config.train.log_every === 0 ? 2 : 1;
      const d0 = performance.now();
      const batch = await task.batchAt(run.step * config.train.batch, config.train.batch);
      dataMs += performance.now() - d0;
      for (const side of sides) {
        const s0 = performance.now();
        side.run(batch);
        sideMs.set(side, (sideMs.get(side) ?? 0) + performance.now() - s0);
      }
      const t0 = performance.now();
      await contrastiveStep(model, batch, run.step, ctx, false);
      total += performance.now() - t0;
    }
  } finally {
    for (const u of undo) u();
  }
  const rows: PieceRow[] = [];
  let named = 0;
  for (const [label, ms] of acc) {
    // Pieces a model does not have (an image model's sparse tables) take no time: leave them out.
    if (ms / steps < 0.05) continue;
    rows.push({ label, ms: ms / steps, part: false });
    named += ms / steps;
    for (const side of sides) {
      if (labels[side.within] === label) rows.push({ label: `of which ${side.label}`, ms: sideMs.get(side)! / steps, part: true });
    }
  }
  rows.push({ label: 'other (grad clipping, tensor disposal, glue)', ms: total / steps - named, part: false });
  return { total: total / steps, rows, dataMs: dataMs / steps };
}

/** Kernel time inside a plain step by kernel, matMuls by shape, from tf.profile; ms per step. */
async function profileKernels(
  run: Run<unknown>,
  steps: number,
): Promise<{ kernelMs: number; matMulMs: number; matMulFlops: number; rows: { label: string; calls: number; ms: number; gflops: number | null }[] }> {
  const { ctx, task, config } = run;
  const info = await tf.profile(async () => {
    for (let i = 0; i < steps; i++) {
      run.step += (run.step + 1) % config.train.log_every === 0 ? 2 : 1;
      await contrastiveStep(task.model, await task.batchAt(run.step * config.train.batch, config.train.batch), run.step, ctx, false);
    }
  });
  const backend = tf.getBackend();
  const groups = new Map<string, { calls: number; ms: number; flops: number }>();
  let kernelMs = 0;
  let matMulMs = 0;
  let matMulFlops = 0;
  for (const k of info.kernels) {
    // customGrad ops are profiled too, around the kernels they run: count registered kernels only.
    if (tf.getKernel(k.name, backend) === undefined || typeof k.kernelTimeMs !== 'number') continue;
    const isMatMul = k.name === 'BatchMatMul' || k.name === '_FusedMatMul';
    const shapes = (list: (number[] | null)[]) => list.map((s) => (s === null ? '-' : s.length === 0 ? 'scalar' : s.join('×'))).join(', ');
    // Shapes name the op a kernel belongs to (e.g. which B×(B+K) matrix a Tile or Slice works on).
    let label = `${k.name} ${shapes(k.inputShapes)} → ${shapes(k.outputShapes)}`;
    let flops = 0;
    if (isMatMul) {
      const a = k.inputShapes[0]!;
      const out = k.outputShapes[0]!;
      // a holds m·k values whatever its transpose flag, so 2·n·|a| is the product's FLOPs.
      flops = 2 * out[out.length - 1]! * a.reduce((x, y) => x * y, 1);
      label = `matMul ${shapes(k.inputShapes.slice(0, 2))}`;
      matMulMs += k.kernelTimeMs;
      matMulFlops += flops;
    }
    const g = groups.get(label) ?? { calls: 0, ms: 0, flops: 0 };
    g.calls++;
    g.ms += k.kernelTimeMs;
    g.flops += flops;
    groups.set(label, g);
    kernelMs += k.kernelTimeMs;
  }
  const rows = [...groups]
    .map(([label, g]) => ({ label, calls: g.calls / steps, ms: g.ms / steps, gflops: g.flops > 0 ? g.flops / (g.ms / 1000) / 1e9 : null }))
    .sort((x, y) => y.ms - x.ms);
  return { kernelMs: kernelMs / steps, matMulMs: matMulMs / steps, matMulFlops: matMulFlops / steps, rows };
}

function fmt(x: number, digits = 1): string {
  return x.toFixed(digits);
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      steps: { type: 'string', default: '20' },
      backend: { type: 'string', default: 'wasm' },
      engine: { type: 'string', default: 'both' },
      only: { type: 'string' },
    },
  });
  const steps = Number(values.steps);
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps must be a positive integer, got "${values.steps}"`);
  const backend = values.backend as BackendName;
  if (!BACKENDS.includes(backend)) throw new Error(`--backend must be one of ${BACKENDS.join(', ')}, got "${values.backend}"`);
  if (values.only !== undefined && values.only !== 'clicklog' && values.only !== 'images')
    throw new Error(`--only must be clicklog or images, got "${values.only}"`);
  const names: ConfigName[] = values.only === undefined ? ['clicklog', 'images'] : [values.only];
  if (values.engine !== 'both' && !ENGINES.includes(values.engine as Engine)) throw new Error(`--engine must be tfjs, onnx or both, got "${values.engine}"`);
  const engines: Engine[] = values.engine === 'both' ? [...ENGINES] : [values.engine as Engine];
  const json = values.json;
  // With --json, stdout carries the result objects only; everything else goes to stderr.
  const say = (line: string) => (json ? process.stderr : process.stdout).write(line + '\n');

  await initBackend(backend);
  const load0 = loadavg();
  say(`bench:step on ${backend}, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), load average ${load0.map((l) => fmt(l, 2)).join(' ')}`);
  const baselines: Record<Engine, number> = { tfjs: Number.NaN, onnx: Number.NaN };
  if (engines.includes('tfjs')) {
    baselines.tfjs = matMulGflops();
    say(`baseline tfjs: plain 1024×1024·1024×1024 tf.matMul on ${backend} ${fmt(baselines.tfjs)} GFLOP/s`);
  }
  if (engines.includes('onnx')) {
    baselines.onnx = await onnxMatMulGflops();
    say(`baseline onnx: plain 1024×1024·1024×1024 MatMul on ONNX Runtime's CPU engine, ${availableParallelism()} threads, ${fmt(baselines.onnx)} GFLOP/s`);
  }

  const tmp = await mkdtemp(join(tmpdir(), 'infobound-bench-'));
  const results: Result[] = [];
  const breakdowns: string[] = [];
  try {
    for (const name of names) {
      for (const engine of engines) {
        const run = await setUp(name, engine, backend, tmp, say);
        let timed: { perStep: number[]; logged: boolean[] };
        try {
          timed = await timeSteps(run, steps);
        } catch (err) {
          if (!(err instanceof UserError)) throw err;
          say(`${name} on ${engine}: not run (${err.message})`);
          continue;
        }
        const { perStep, logged } = timed;
        const matmul = baselines[engine];
        const ms = perStep.reduce((a, b) => a + b, 0) / steps;
        const { batch } = run.config.train;
        const stepGflops = run.flops / (ms / 1000) / 1e9;
        const result: Result = {
          config: name,
          engine,
          backend,
          batch,
          bank_size: run.config.bank.size,
          ms_per_step: ms,
          examples_per_s: (batch * 1000) / ms,
          step_gflops: stepGflops,
          matmul_gflops: matmul,
          ratio: stepGflops / matmul,
        };
        results.push(result);
        if (json) process.stdout.write(JSON.stringify(result) + '\n');
        else say(`${name} on ${engine}: ${fmt(ms)} ms/step over ${steps} steps (${fmt(run.flops / 1e9, 3)} GFLOP of matMuls per step)`);
        // The breakdown instruments the tfjs engine's model calls and profiles its kernels.
        if (!json && engine === 'tfjs' && result.ratio < GOAL_RATIO) {
          const plain = perStep.filter((_, i) => !logged[i]);
          const withBounds = perStep.filter((_, i) => logged[i]);
          const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
          const p = await timePieces(run, PIECE_STEPS);
          const k = await profileKernels(run, KERNEL_STEPS);
          const lines = [
            `${name}: below the goal (${fmt(result.ratio * 100)}% < ${GOAL_RATIO * 100}% of plain matMul). Where a plain step's ${fmt(p.total)} ms go (mean of ${PIECE_STEPS} steps):`,
            table(
              ['piece', 'ms/step', 'share'],
              p.rows.map((r) => [(r.part ? '  ' : '') + r.label, fmt(r.ms), `${fmt((100 * r.ms) / p.total)}%`]),
            ),
          ];
          if (withBounds.length > 0 && plain.length > 0)
            lines.push(
              `logged steps (bounds, every ${run.config.train.log_every}th) cost ${fmt(mean(withBounds) - mean(plain))} ms more than plain ones in the timed run`,
            );
          lines.push(`outside the step: task.nextBatch ${fmt(p.dataMs)} ms per batch`);
          lines.push(
            `tfjs kernels (tf.profile, ${KERNEL_STEPS} steps): ${fmt(k.kernelMs)} ms/step inside kernels, of which matMuls ${fmt(k.matMulMs)} ms ` +
              `(${fmt(k.matMulFlops / 1e9, 3)} GFLOP at ${fmt(k.matMulFlops / (k.matMulMs / 1000) / 1e9)} GFLOP/s); ` +
              `about ${fmt(p.total - k.kernelMs)} ms/step outside kernels (JS, tfjs op dispatch). Kernels from 1% of a step:`,
            table(
              ['kernel', 'calls/step', 'ms/step', 'GFLOP/s'],
              k.rows.filter((r) => r.ms >= p.total / 100).map((r) => [r.label, fmt(r.calls, 0), fmt(r.ms), r.gflops === null ? '' : fmt(r.gflops)]),
            ),
          );
          breakdowns.push(lines.join('\n'));
        }
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  if (!json) {
    say('');
    say(
      table(
        ['config', 'engine', 'ms/step', 'examples/s', 'step GFLOP/s', 'matMul GFLOP/s', 'ratio'],
        results.map((r) => [
          r.config,
          r.engine,
          fmt(r.ms_per_step),
          fmt(r.examples_per_s, 0),
          fmt(r.step_gflops, 2),
          fmt(r.matmul_gflops),
          `${fmt(r.ratio * 100)}%`,
        ]),
      ),
    );
    say(
      `batch ${results[0]?.batch}, bank ${results[0]?.bank_size}; load average at the end ${loadavg()
        .map((l) => fmt(l, 2))
        .join(' ')}`,
    );
    const clicklog = (engine: Engine) => results.find((r) => r.config === 'clicklog' && r.engine === engine);
    if (names.includes('clicklog')) {
      // The same click-log step in PyTorch, one thread and all cores, beside both engines.
      const torch = [1, availableParallelism()].map((threads) => ({ threads, r: pytorchStep(threads, steps) }));
      for (const { threads, r } of torch) {
        if (typeof r === 'string') say(`pytorch reference, ${threads} thread(s): not run (${r})`);
        else
          say(`pytorch reference (torch ${r.torch} on ${r.blas}), ${threads} thread(s): ${fmt(r.ms_per_step)} ms/step, ${fmt(r.examples_per_s, 0)} examples/s`);
      }
      const ms = (threads: number) => {
        const r = torch.find((x) => x.threads === threads)?.r;
        return typeof r === 'object' ? r.ms_per_step : undefined;
      };
      const onnx = clicklog('onnx');
      const tfjs = clicklog('tfjs');
      const all = ms(availableParallelism());
      if (onnx !== undefined && all !== undefined)
        say(`clicklog: onnx (${availableParallelism()} threads) is ${fmt(all / onnx.ms_per_step, 2)}× as fast as PyTorch on as many threads`);
      if (tfjs !== undefined && ms(1) !== undefined)
        say(`clicklog: tfjs-${backend} (1 thread) is ${fmt(ms(1)! / tfjs.ms_per_step, 2)}× as fast as PyTorch on 1 thread`);
      if (onnx !== undefined && tfjs !== undefined) say(`clicklog: onnx is ${fmt(tfjs.ms_per_step / onnx.ms_per_step, 2)}× as fast as tfjs-${backend}`);
    }
    for (const b of breakdowns) say('\n' + b);
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench:step: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
