import { outputDirectory } from '../../common/output-directory.js';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { initBackend } from '../../common/backend.js';
import { resolveRunDir, type Config } from '../../common/config/mod.js';
import type { StepLine, SummaryLine } from '../../common/run-lines.js';
import { CHECKPOINT_FILE, JobLog } from '../../coordinator/job-log.js';
import { openBankTransport } from '../bank/open-bank-transport.js';
import { withPreparedData } from '../dataset/prepare-for-run.js';
import { loadTask } from './load-task.js';
import { LocalSchedule } from './local-schedule.js';
import { createStepContext } from './step-context.js';
import { runTrainingLoop, type LoopObserver } from './training-loop.js';
import { TrainingRun } from './training-run.js';

/** What the caller of {@link train} sees while a run goes. */
export interface TrainObserver extends LoopObserver {
  /** Logged steps. */
  step?(line: StepLine): void;
  /** Sees the local dense gradient before it is checked (fault injection in tests; see StepContext). */
  localGradientHook?: (grad: Float32Array, step: number) => void;
}

/**
 * Loads the data (a raw click log prepared into the run directory first), builds the model and trains it in this process: the training loop over a local
 * schedule (a world of one, the bank in-process or over NATS, no coordinator), with the job's log in
 * the run directory. Resolves with the run's summary.
 */
export async function train(given: Config, observer: TrainObserver = {}): Promise<SummaryLine> {
  await initBackend(given.backend);
  const runDir = resolveRunDir(given);
  outputDirectory('--run-dir', runDir);
  const config = await withPreparedData({ ...given, run_dir: runDir }, runDir, observer.info, observer.warn);
  const task = await loadTask(config, observer.warn);
  observer.info?.(`${task.description}; run directory ${runDir}`);
  const transport = await openBankTransport(config, task.model, {
    job: 'infobound',
    runId: randomUUID(),
    bankKey: randomBytes(32),
    clientName: `infobound-train-${process.pid}`,
  });
  try {
    const ctx = createStepContext(config, task, transport);
    if (observer.localGradientHook !== undefined) ctx.localGradientHook = observer.localGradientHook;
    const run = new TrainingRun(config, task, ctx, join(runDir, CHECKPOINT_FILE));
    if (config.train.resume !== null) {
      await run.restoreFile(config.train.resume);
      observer.info?.(`resumed from ${config.train.resume} at step ${run.step}`);
    }
    const { order } = task;
    const log = new JobLog(config, runDir, {
      workers: 1,
      ...(order.shardRanges ? { shardRanges: (start: number, count: number) => order.shardRanges!(start, count) } : {}),
      ...(observer.step ? { step: observer.step } : {}),
    });
    await runTrainingLoop(run, new LocalSchedule(run, config, log), observer);
    return await log.summary;
  } finally {
    await transport.close();
  }
}
