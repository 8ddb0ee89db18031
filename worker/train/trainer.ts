import { mkdirSync, existsSync } from 'node:fs';
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../common/user-error.js';
import { initBackend } from '../../common/backend.js';
import { readCheckpoint, writeCheckpoint, type CheckpointArray } from '../../common/checkpoint-file.js';
import { resolveKind, type Config } from '../../common/config.js';
import { BOUND_NAMES, type BoundValues } from '../../common/estimators.js';
import { ClickLogTask } from './clicklog-task.js';
import { contrastiveStep, type StepContext, type StepResult } from './contrastive-step.js';
import { ImageTask } from './image-task.js';
import { createStepContext } from './step-context.js';
import type { TrainingTask } from './training-task.js';

/** One `--json` line per logged step (the field names are an interface: keep them). */
export interface StepLine {
  type: 'step';
  worker: number;
  step: number;
  epoch: number;
  loss: number;
  bounds: BoundValues;
  ceiling: number;
  temperature: number;
  accuracy: number;
  examples_per_s: number;
  grad_norm: number;
  bank_fill: number;
  bank_digest: string;
  key_age_steps: number;
  step_ms: { data: number; compute: number; allreduce: number; bank_wait: number };
}

/** The `--json` line at the end of a run. */
export interface SummaryLine {
  type: 'summary';
  kind: string;
  steps: number;
  examples: number;
  seconds: number;
  examples_per_s: number;
  /** Mean of each bound over the last quarter of the logged steps. */
  bounds: BoundValues;
  /** Bounds at the first logged step, to show the rise. */
  initial_bounds: BoundValues | null;
  /** Largest InfoNCE value logged, for the check against the ceiling. */
  max_infonce: number | null;
  ceiling: number;
  true_mi: number | null;
  temperature: number;
  eval: Record<string, number | null>;
  skipped_inputs: Record<string, number>;
  checkpoint: string;
  run_dir: string;
}

/** What the caller sees while a run goes. */
export interface TrainObserver {
  info?(message: string): void;
  warn?(message: string): void;
  /** Every step (for a progress bar). */
  progress?(p: { step: number; steps: number; loss: number; bound: number | null; ceiling: number; examplesPerS: number }): void;
  /** Logged steps. */
  step?(line: StepLine): void;
}

const CHECKPOINT_FILE = 'checkpoint.ibck';

/** Loads the data, builds the model and trains it on this machine, reporting through `observer`. */
export async function train(config: Config, observer: TrainObserver = {}): Promise<SummaryLine> {
  if (config.data === null) throw new UserError('no data: pass --data FILE (a click log, or a directory of IDX files)');
  const kind = resolveKind(config);
  await initBackend(config.backend);
  const task: TrainingTask<unknown> =
    kind === 'clicklog' ? await ClickLogTask.load(config, observer.warn) : await ImageTask.load(config);
  const runDir = config.run_dir ?? join('runs', `${kind}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(runDir, { recursive: true });
  const logPath = join(runDir, 'run.jsonl');
  observer.info?.(`${task.description}; run directory ${runDir}`);

  const model = task.model;
  const ctx = createStepContext(config, task);
  const { bank } = ctx;

  let step = 0;
  // Position in the example stream; a single worker reads `batch` positions per step.
  let position = 0;
  if (config.train.resume !== null) {
    ({ step, position } = await restore(config.train.resume, task, ctx));
    observer.info?.(`resumed from ${config.train.resume} at step ${step}`);
  }
  const firstStep = step + 1;

  const { steps, batch, log_every: logEvery } = config.train;
  const logged: StepLine[] = [];
  const started = performance.now();
  let windowStart = started;
  let windowExamples = 0;
  let last: StepResult | undefined;
  let lastBound: number | null = null;
  const checkpointPath = join(runDir, CHECKPOINT_FILE);
  while (step < steps) {
    step++;
    const t0 = performance.now();
    const b = task.batchAt(position, batch);
    position += batch;
    const dataMs = performance.now() - t0;
    const isLog = step % logEvery === 0 || step === steps || step === firstStep;
    last = await contrastiveStep(model, b, step, ctx, isLog);
    if (!Number.isFinite(last.loss)) throw new UserError(`step ${step}: the loss is ${last.loss}; lower train.lr or temperature.value's inverse`);
    windowExamples += batch;
    const now = performance.now();
    const rate = (windowExamples * 1000) / Math.max(now - windowStart, 1e-3);
    if (last.bounds !== undefined) lastBound = last.bounds.infonce;
    observer.progress?.({ step, steps, loss: last.loss, bound: lastBound, ceiling: last.ceiling, examplesPerS: rate });
    if (isLog && last.bounds !== undefined) {
      const line: StepLine = {
        type: 'step',
        worker: ctx.rank,
        step,
        epoch: task.order.epochOf(position - 1),
        loss: last.loss,
        bounds: last.bounds,
        ceiling: last.ceiling,
        temperature: 1 / last.scale,
        accuracy: last.accuracy!,
        examples_per_s: rate,
        grad_norm: last.gradNorm,
        bank_fill: bank.filled / bank.capacity,
        bank_digest: bank.digest(),
        key_age_steps: bank.meanKeyAge(step),
        step_ms: { data: dataMs, compute: last.computeMs, allreduce: last.allReduceMs, bank_wait: last.bankWaitMs },
      };
      logged.push(line);
      observer.step?.(line);
      await appendFile(logPath, JSON.stringify(line) + '\n');
      windowStart = now;
      windowExamples = 0;
    }
    if (config.train.checkpoint_every > 0 && step % config.train.checkpoint_every === 0 && step < steps) {
      await save(checkpointPath, step, position, task, ctx, config);
    }
  }
  await save(checkpointPath, step, position, task, ctx, config);
  const seconds = (performance.now() - started) / 1000;
  observer.info?.('evaluating on held-out data');
  const evalFigures = config.eval.enabled ? await task.evaluate(step, last !== undefined ? 1 / last.scale : config.temperature.value) : {};
  const tail = logged.slice(Math.floor(logged.length * 0.75));
  const summary: SummaryLine = {
    type: 'summary',
    kind,
    steps: step,
    examples: step * batch,
    seconds,
    examples_per_s: (logged.length > 0 ? (step - (logged[0]!.step - 1)) * batch : 0) / Math.max(seconds, 1e-9),
    bounds: meanBounds(tail),
    initial_bounds: logged[0]?.bounds ?? null,
    max_infonce: logged.length > 0 ? Math.max(...logged.map((l) => l.bounds.infonce)) : null,
    ceiling: last?.ceiling ?? Math.log(config.bank.size + 1),
    true_mi: task.trueMi,
    temperature: last !== undefined ? 1 / last.scale : config.temperature.value,
    eval: evalFigures,
    skipped_inputs: Object.fromEntries(Object.entries(task.skipped).filter(([, n]) => n > 0)),
    checkpoint: checkpointPath,
    run_dir: runDir,
  };
  await appendFile(logPath, JSON.stringify(summary) + '\n');
  await writeFile(join(runDir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  return summary;
}

function meanBounds(lines: readonly StepLine[]): BoundValues {
  const out = Object.fromEntries(BOUND_NAMES.map((n) => [n, 0])) as BoundValues;
  for (const l of lines) for (const n of BOUND_NAMES) out[n] += l.bounds[n] / lines.length;
  return out;
}

/** Everything needed to continue exactly: parameters, optimisers, momentum encoder, bank, data cursor. */
async function save(path: string, step: number, position: number, task: TrainingTask<unknown>, ctx: StepContext, config: Config): Promise<void> {
  const f32 = (data: Float32Array): CheckpointArray => ({ dtype: 'float32', shape: [data.length], data });
  const i32 = (data: Int32Array): CheckpointArray => ({ dtype: 'int32', shape: [data.length], data });
  const { bank, adam } = ctx;
  await writeCheckpoint(path, {
    meta: {
      step,
      position,
      kind: config.kind,
      adam_t: adam.t,
      mine_ema: ctx.mine.ema ?? null,
      bank: { head: bank.head, filled: bank.filled, capacity: bank.capacity, dim: bank.dim },
      params: modelSignature(task),
    },
    tensors: {
      'online.dense': f32(task.model.online.values),
      'adam.m': f32(adam.m),
      'adam.v': f32(adam.v),
      'bank.keys': f32(bank.keys),
      'bank.ids': i32(bank.ids),
      'bank.steps': i32(bank.steps),
      ...task.saveState(step),
    },
  });
}

function modelSignature(task: TrainingTask<unknown>): string {
  return task.model.online.specs.map((s) => `${s.name}:${s.shape.join('x')}`).join(',');
}

async function restore(path: string, task: TrainingTask<unknown>, ctx: StepContext): Promise<{ step: number; position: number }> {
  if (!existsSync(path)) throw new UserError(`--resume ${path}: no such checkpoint`);
  const ck = await readCheckpoint(path);
  const meta = ck.meta as { step: number; position: number; adam_t: number; mine_ema: number | null; bank: { head: number; filled: number; capacity: number }; params: string };
  if (meta.params !== modelSignature(task)) throw new UserError(`${path}: the checkpoint was written by a model of another shape (${meta.params})`);
  if (meta.bank.capacity !== ctx.bank.capacity) throw new UserError(`${path}: the checkpoint's bank holds ${meta.bank.capacity} keys, this run's bank.size is ${ctx.bank.capacity}`);
  const arrays = new Map(Object.entries(ck.tensors));
  const get = (name: string) => {
    const a = arrays.get(name);
    if (a === undefined) throw new UserError(`${path}: the checkpoint has no ${name}`);
    return a.data;
  };
  task.model.online.values.set(get('online.dense') as Float32Array);
  ctx.adam.m.set(get('adam.m') as Float32Array);
  ctx.adam.v.set(get('adam.v') as Float32Array);
  ctx.adam.t = meta.adam_t;
  ctx.mine.restore(meta.mine_ema ?? undefined);
  try {
    ctx.bank.restore(get('bank.keys') as Float32Array, get('bank.ids') as Int32Array, get('bank.steps') as Int32Array, meta.bank.head, meta.bank.filled);
    task.restoreState(arrays);
  } catch (err) {
    if (err instanceof RangeError) throw new UserError(`${path}: ${err.message}`);
    throw err;
  }
  return { step: meta.step, position: meta.position };
}
