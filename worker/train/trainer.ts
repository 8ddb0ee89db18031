import { mkdirSync } from 'node:fs';
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../common/user-error.js';
import { initBackend } from '../../common/backend.js';
import { resolveKind, resolveRunDir, type Config } from '../../common/config/mod.js';
import { skippedInputs, summarizeSteps, type StepLine, type SummaryLine } from '../../common/run-lines.js';
import { stepFigures } from './step-figures.js';
import { restoreTrainingState, saveTrainingState } from './training-state-file.js';
import { contrastiveStep, type StepResult } from './contrastive-step.js';
import { loadTask } from './load-task.js';
import { createStepContext } from './step-context.js';
import type { InfoboundMetrics } from '../../common/metrics.js';
import { openBankTransport } from '../bank/open-bank-transport.js';
import { randomUUID } from 'node:crypto';

/** What the caller sees while a run goes. */
export interface TrainObserver {
  info?(message: string): void;
  warn?(message: string): void;
  /** Every step (for a progress bar). */
  progress?(p: { step: number; steps: number; loss: number; bound: number | null; ceiling: number; examplesPerS: number }): void;
  /** Logged steps. */
  step?(line: StepLine): void;
  /** Prometheus metrics to keep up to date (served by the caller). */
  metrics?: InfoboundMetrics;
}

const CHECKPOINT_FILE = 'checkpoint.ibck';

/** Loads the data, builds the model and trains it on this machine, reporting through `observer`. */
export async function train(config: Config, observer: TrainObserver = {}): Promise<SummaryLine> {
  const kind = resolveKind(config);
  await initBackend(config.backend);
  const task = await loadTask(config, observer.warn);
  const runDir = resolveRunDir(config);
  mkdirSync(runDir, { recursive: true });
  const logPath = join(runDir, 'run.jsonl');
  observer.info?.(`${task.description}; run directory ${runDir}`);

  const model = task.model;
  const transport = await openBankTransport(config, model.dim, { job: 'infobound', runId: randomUUID(), clientName: `infobound-train-${process.pid}` });
  const ctx = createStepContext(config, task, transport);
  const { bank } = ctx;
  try {
    let step = 0;
    // Position in the example stream; a single worker reads `batch` positions per step.
    let position = 0;
    if (config.train.resume !== null) {
      ({ step, position } = await restoreTrainingState(config.train.resume, task, ctx));
      observer.info?.(`resumed from ${config.train.resume} at step ${step}`);
    }
    const firstStep = step + 1;
    const metrics = observer.metrics;
    metrics?.setTrueMi(task.trueMi);
    metrics?.skippedInputs(task.skipped);

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
      const figures = stepFigures(last, batch, dataMs, rate);
      metrics?.step(figures);
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
          bank_lag: await transport.lag(),
          key_age_steps: bank.meanKeyAge(step),
          key_age_counts: bank.keyAgeCounts(step),
          step_ms: figures.ms,
        };
        logged.push(line);
        observer.step?.(line);
        metrics?.bank({ fill: line.bank_fill, lag: line.bank_lag, meanAge: line.key_age_steps, ageCounts: line.key_age_counts });
        metrics?.skippedInputs(skippedInputs(task.skipped, transport.dropped));
        await appendFile(logPath, JSON.stringify(line) + '\n');
        windowStart = now;
        windowExamples = 0;
      }
      if (config.train.checkpoint_every > 0 && step % config.train.checkpoint_every === 0 && step < steps) {
        await saveTrainingState(checkpointPath, step, position, task, ctx, config);
        metrics?.checkpointNow();
      }
    }
    await saveTrainingState(checkpointPath, step, position, task, ctx, config);
    metrics?.checkpointNow();
    const seconds = (performance.now() - started) / 1000;
    observer.info?.('evaluating on held-out data');
    const evalFigures = config.eval.enabled ? await task.evaluate(step, last !== undefined ? 1 / last.scale : config.temperature.value) : {};
    const summary: SummaryLine = {
      type: 'summary',
      kind,
      steps: step,
      examples: step * batch,
      seconds,
      examples_per_s: (logged.length > 0 ? (step - (logged[0]!.step - 1)) * batch : 0) / Math.max(seconds, 1e-9),
      ...summarizeSteps(logged),
      ceiling: last?.ceiling ?? Math.log(config.bank.size + 1),
      true_mi: task.trueMi,
      temperature: last !== undefined ? 1 / last.scale : config.temperature.value,
      eval: evalFigures,
      skipped_inputs: skippedInputs(task.skipped, transport.dropped),
      checkpoint: checkpointPath,
      run_dir: runDir,
    };
    await appendFile(logPath, JSON.stringify(summary) + '\n');
    await writeFile(join(runDir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    return summary;
  } finally {
    await transport.close();
  }
}
