import { describeMemory } from '../../common/memory-parts.js';
import type { InfoboundMetrics } from '../../common/metrics.js';
import { memoryByPart } from './memory-by-part.js';
import { skippedInputs } from '../../common/run-lines.js';
import { UserError } from '../../common/user-error.js';
import { EVALUATING_ALONE, EvaluationGroupError } from '../eval/evaluation-group.js';
import { applyStep, computeStep, type PendingStep } from './contrastive-step.js';
import { stepFigures } from './step-figures.js';
import type { FinalFigures, StepSchedule } from './step-schedule.js';
import type { TrainingRun } from './training-run.js';

/** What the caller of {@link runTrainingLoop} sees while a run goes. */
export interface LoopObserver {
  info?(message: string): void;
  warn?(message: string): void;
  /** Every applied step (for a progress bar). */
  progress?(p: { step: number; steps: number; loss: number; bound: number | null; ceiling: number; examplesPerS: number }): void;
  /** Prometheus metrics of this process to keep up to date (served by the caller). */
  metrics?: InfoboundMetrics;
}

/**
 * Every run's loop, a single process's and a cluster worker's alike: take the step the schedule
 * assigns, read its examples, compute it, checkpoint, report it, apply it once committed, and at the
 * end checkpoint, evaluate (rank 0) and hand the final figures on. The step figures, the refusal of
 * non-finite steps and the checkpoint cadence live here once for every mode.
 */
export async function runTrainingLoop(run: TrainingRun, schedule: StepSchedule, o: LoopObserver = {}): Promise<void> {
  const { config, task, ctx } = run;
  const { steps, log_every: logEvery, checkpoint_every: checkpointEvery, max_non_finite_steps: maxRefusedInARow } = config.train;
  const metrics = o.metrics;
  metrics?.setTrueMi(task.trueMi);
  // Every reason at 0 from the start, so that dashboards find the series before the first skip.
  metrics?.skippedInputs({ ...task.skipped, non_finite_step: 0 });
  const memory = memoryByPart(task, ctx);
  o.info?.(describeMemory(memory));
  metrics?.memory(memory);
  const firstStep = run.step + 1;
  let refusedSteps = 0;
  let refusedInARow = 0;
  let window = { started: performance.now(), examples: 0 };
  let lastBound: number | null = null;
  let temperature = config.temperature.value;
  const skipped = (): Record<string, number> => skippedInputs({ ...task.skipped, non_finite_step: refusedSteps }, ctx.transport.dropped);

  for (;;) {
    const a = await schedule.next();
    if (a === 'drained') return;
    if (a === 'done') break;
    const t0 = performance.now();
    const bytesBefore = ctx.reducer.bytesSent;
    const batch = await task.batchAt(a.start, a.count);
    const dataMs = performance.now() - t0;
    const logged = a.step % logEvery === 0 || a.step === steps || a.step === firstStep;
    let pending: PendingStep;
    try {
      pending = await computeStep(task.model, batch, a.step, ctx, logged);
    } catch (err) {
      await schedule.recover(a, err);
      continue;
    }
    // Rank 0 checkpoints the state this step starts from (the last commit) and says so in its report;
    // with a partitioned bank every member takes part (its shard is gathered).
    const checkpointWritten = schedule.rank === 0 && checkpointEvery > 0 && run.step > 0 && run.step % checkpointEvery === 0;
    if (checkpointEvery > 0 && run.step > 0 && run.step % checkpointEvery === 0) {
      try {
        await run.checkpoint(checkpointWritten, a.step);
      } catch (err) {
        pending.discard();
        await schedule.recover(a, err);
        continue;
      }
      if (checkpointWritten) metrics?.checkpointNow();
    }
    window.examples += a.count;
    const examplesPerS = (window.examples * 1000) / Math.max(performance.now() - window.started, 1e-3);
    const figures = await stepFigures(pending.result, run, a.step, a.start, { dataMs, examplesPerS });
    if ((await schedule.report(a, { figures, checkpointWritten, refused: pending.refused })) === 'discarded') {
      pending.discard();
      continue;
    }
    const result = applyStep(task.model, pending, ctx);
    if (ctx.reducer.world > 1) metrics?.collective(ctx.reducer.bytesSent - bytesBefore, result.allReduceMs);
    run.step = a.step;
    run.position = a.positionAfter;
    temperature = 1 / result.scale;
    if (pending.refused !== null) {
      refusedSteps++;
      refusedInARow++;
      o.warn?.(`infobound: step ${a.step} refused: the loss or a gradient was not finite on a worker; nothing was applied`);
      metrics?.skippedInputs(skipped());
      if (refusedInARow >= maxRefusedInARow) {
        const message = `steps ${a.step - refusedInARow + 1}–${a.step}: the loss or a gradient was not finite ${refusedInARow} times in a row (train.max_non_finite_steps); lower train.lr or raise temperature.value. The last checkpoint is intact`;
        await schedule.fail(message);
        throw new UserError(message);
      }
      continue;
    }
    refusedInARow = 0;
    metrics?.step(a.count, figures);
    if (figures.logged) {
      metrics?.memory(memoryByPart(task, ctx));
      lastBound = figures.bounds!.infonce;
      window = { started: performance.now(), examples: 0 };
      metrics?.skippedInputs(skipped());
    }
    o.progress?.({ step: a.step, steps, loss: result.loss, bound: lastBound, ceiling: result.ceiling, examplesPerS });
  }

  const final: FinalFigures = { skipped_inputs: skipped() };
  await run.finalCheckpoint(schedule.rank === 0, run.step + 1);
  if (schedule.rank === 0) {
    metrics?.checkpointNow();
    final.true_mi = task.trueMi;
  }
  if (config.eval.enabled && (schedule.rank === 0 || task.sharedEvaluation)) Object.assign(final, await evaluateAtEnd(run, schedule, temperature, o));
  await schedule.finish(final);
}

/**
 * The held-out evaluation after the last step: shared by every member when the task can split it,
 * else rank 0's alone. When a member is lost on the way, rank 0 evaluates alone instead, so the job
 * still gets its figures. Only rank 0's figures are kept.
 */
async function evaluateAtEnd(run: TrainingRun, schedule: StepSchedule, temperature: number, o: LoopObserver): Promise<Partial<FinalFigures>> {
  const { task } = run;
  const lead = schedule.rank === 0;
  let group = task.sharedEvaluation ? schedule.evaluationGroup() : EVALUATING_ALONE;
  if (lead) o.info?.(`evaluating on held-out data${group.world > 1 ? `, shared by ${group.world} members` : ''}`);
  const started = performance.now();
  let figures: Record<string, number | null>;
  try {
    figures = await task.evaluate(run.step, temperature, group);
  } catch (err) {
    if (!(err instanceof EvaluationGroupError)) throw err;
    if (!lead) return {};
    o.warn?.(`infobound: the shared evaluation failed (${err.message}); rank 0 evaluates alone`);
    group = EVALUATING_ALONE;
    figures = await task.evaluate(run.step, temperature, group);
  }
  // A member's Leave ends the generation and so every collective still in flight: nobody leaves
  // before everyone has its sums. Completing this barrier means every member completed them.
  if (group.world > 1) await group.sum(new Float32Array(1)).catch(() => {});
  return lead ? { eval: figures, eval_seconds: (performance.now() - started) / 1000, eval_members: group.world } : {};
}
