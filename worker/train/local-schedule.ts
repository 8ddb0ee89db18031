import { EVALUATING_ALONE, type EvaluationGroup } from '../eval/evaluation-group.js';
import type { Config } from '../../common/config/mod.js';
import { epochOf } from '../../coordinator/data-plan.js';
import type { JobLog } from '../../coordinator/job-log.js';
import { stepReport, type FinalFigures, type StepAssignment, type StepOutcome, type StepSchedule } from './step-schedule.js';
import type { TrainingRun } from './training-run.js';

const WORKER_ID = 'local';

/**
 * A single process's schedule: a world of one that reads `train.batch` examples a step from where the
 * run stands, and commits each step to the job's log at once, as a coordinator of one member would.
 */
export class LocalSchedule implements StepSchedule {
  readonly rank = 0;

  constructor(
    private readonly run: TrainingRun,
    private readonly config: Config,
    private readonly log: JobLog,
  ) {
    log.membership({
      generation: 1,
      members: [{ worker_id: WORKER_ID, peer_address: '', rank: 0 }],
      committedStep: run.step,
      joined: [WORKER_ID],
      removed: [],
    });
  }

  async next(): Promise<StepAssignment | 'done'> {
    const { step, position } = this.run;
    const { steps, batch } = this.config.train;
    if (step >= steps) {
      this.log.done();
      return 'done';
    }
    return { step: step + 1, start: position, count: batch, positionAfter: position + batch };
  }

  async report(a: StepAssignment, outcome: StepOutcome): Promise<'committed'> {
    this.log.commit({
      step: a.step,
      generation: 1,
      world: 1,
      epoch: epochOf(a.positionAfter, this.run.task.order.size),
      epochSize: this.run.task.order.size,
      ranges: [[a.start, a.count]],
      cursor: a.positionAfter,
      checkpoint: outcome.checkpointWritten,
      reports: [stepReport(WORKER_ID, 1, a, outcome)],
    });
    return 'committed';
  }

  async recover(_a: StepAssignment, err: unknown): Promise<void> {
    // Nothing to wait for in a world of one: a failed step ends the run.
    throw err;
  }

  evaluationGroup(): EvaluationGroup {
    return EVALUATING_ALONE;
  }

  async finish(final: FinalFigures): Promise<void> {
    this.log.left({ workerId: WORKER_ID, rank: 0, generation: 1, summaryJson: JSON.stringify(final) });
  }

  async fail(): Promise<void> {
    // The loop stops with the error itself; there is no other member to tell.
  }
}
