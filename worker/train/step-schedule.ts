import type { EvaluationGroup } from '../eval/evaluation-group.js';
import type { StepReport__Output } from '../../proto/generated/infobound/v1/StepReport.js';
import type { StepFigures } from './step-figures.js';

/** One step a member is to train: its number and the examples it reads from the seeded example stream. */
export interface StepAssignment {
  step: number;
  /** First stream position this member reads. */
  start: number;
  /** Examples it reads from there. */
  count: number;
  /** Stream position after the step, once committed. */
  positionAfter: number;
}

/** A computed step as the member reports it. */
export interface StepOutcome {
  figures: StepFigures;
  /** Whether this member wrote a checkpoint of the state the step started from (rank 0 only). */
  checkpointWritten: boolean;
  /** Set when some member's loss or gradient was not finite: the step is refused everywhere, nothing applied. */
  refused: 'non_finite_step' | null;
}

/** A member's last word to the job at its end. */
export interface FinalFigures {
  /** Held-out evaluation (rank 0), else absent. */
  eval?: Record<string, number | null>;
  /** Seconds the evaluation took (rank 0). */
  eval_seconds?: number;
  /** Members that shared the evaluation (1: rank 0 alone). */
  eval_members?: number;
  true_mi?: number | null;
  skipped_inputs: Record<string, number>;
}

/**
 * Where a member's steps come from and where their outcome goes: the training loop's only view of the
 * job. A single process is a world of one on a local schedule; a cluster worker's schedule is backed
 * by the coordinator, and hides joins, heartbeats, generations and catch-up behind these calls.
 */
export interface StepSchedule {
  /** This member's rank now (it may change with the generation). */
  readonly rank: number;
  /**
   * The next step to train; `done` once the job's last step has committed; `drained` when the member
   * was asked to leave early and has left. A new generation may move the run first (back to a
   * checkpoint, or forward to a peer's state).
   */
  next(): Promise<StepAssignment | 'done' | 'drained'>;
  /**
   * Reports a computed step and resolves once it counts (`committed`: apply it) or when the membership
   * changed first (`discarded`: drop it; the step is planned again).
   */
  report(a: StepAssignment, outcome: StepOutcome): Promise<'committed' | 'discarded'>;
  /**
   * A step's computation failed (a peer vanished mid-exchange, say). Resolves once the member can go
   * on in a new generation; rejects when the failure ends the run.
   */
  recover(a: StepAssignment, err: unknown): Promise<void>;
  /**
   * The members that share the evaluation after the last step (this member's place among them, and
   * their collective); a world of one evaluates alone.
   */
  evaluationGroup(): EvaluationGroup;
  /** Hands on the member's final figures and leaves the job; the job's summary follows from them. */
  finish(final: FinalFigures): Promise<void>;
  /** The run stops on an error every member reached (the same non-finite streak): tell the job, then leave. */
  fail(message: string): Promise<void>;
}

/** The report of member `workerId`'s computed step `a` in `generation`, as the coordinator receives it. */
export function stepReport(workerId: string, generation: number, a: StepAssignment, outcome: StepOutcome): StepReport__Output {
  return {
    worker_id: workerId,
    generation,
    step: a.step,
    metrics: outcome.figures,
    examples: a.count,
    checkpoint_written: outcome.checkpointWritten,
    split_start: a.start,
    refused: outcome.refused ?? '',
    // The coordinator client sends its own session credential with the report.
    session: '',
  };
}
