import type { StepFigures } from '../../common/metrics.js';
import type { StepResult } from './contrastive-step.js';

/** What a finished step gives the metrics: the same figures its step line carries. */
export function stepFigures(r: StepResult, examples: number, dataMs: number, examplesPerSecond: number): StepFigures {
  return {
    examples,
    ms: { data: dataMs, compute: r.computeMs, allreduce: r.allReduceMs, bank_wait: r.bankWaitMs },
    loss: r.loss,
    ...(r.bounds !== undefined ? { bounds: r.bounds, accuracy: r.accuracy! } : {}),
    ceiling: r.ceiling,
    temperature: 1 / r.scale,
    examplesPerSecond,
  };
}
