/**
 * Step commits: the step in flight (its assignments and reports) and the committed position of the
 * job (step, data cursor, last checkpoint). A step commits when every member of the generation has
 * reported it; a generation change before that discards the reports, and the step is planned again
 * from the same cursor for the new generation.
 */
import type { Split__Output } from '../proto/generated/infobound/v1/Split.js';
import type { StepReport__Output } from '../proto/generated/infobound/v1/StepReport.js';
import { splitOf, stepExamples } from './data-plan.js';
import { refusal } from './rpc-failure.js';

/** Where the job stands: what the state file records and a restart resumes from. */
export interface LedgerPosition {
  /** The last committed step (0: none). */
  committedStep: number;
  /** Stream position where the next step starts. */
  cursor: number;
  /** The last committed step with a durable model checkpoint (0: none). */
  checkpointStep: number;
  /** The cursor after `checkpointStep`. */
  checkpointCursor: number;
}

/** A step that just committed. */
export interface CommittedStep {
  /** Its number. */
  step: number;
  /** The cursor after it. */
  cursor: number;
  /** The members' reports in rank order. */
  reports: StepReport__Output[];
  /** The examples each member was assigned, in rank order: [start position, count]. */
  ranges: [number, number][];
  /** Whether a member reported a durable checkpoint of the state this step started from (the previous commit). */
  checkpoint: boolean;
}

/** The step in flight and the committed position of a job of `steps` steps of `batch` examples per rank. */
export class StepLedger {
  private position: LedgerPosition;
  private readonly reports = new Map<string, StepReport__Output>();
  private started = false;

  constructor(
    /** Steps of the whole job. */
    readonly steps: number,
    /** Examples per rank per step. */
    readonly batch: number,
    /** Where the job starts (a new job: all zero). */
    start: LedgerPosition,
  ) {
    this.position = { ...start };
  }

  /** The committed position (a copy). */
  get committed(): LedgerPosition {
    return { ...this.position };
  }

  /** The last committed step. */
  get committedStep(): number {
    return this.position.committedStep;
  }

  /** True once every step of the job has committed. */
  get done(): boolean {
    return this.position.committedStep >= this.steps;
  }

  /**
   * True when the next step has begun in this generation: a member was given its assignment or
   * reported it. A joiner then waits for the commit instead of making the members throw the step away.
   */
  get inFlight(): boolean {
    return !this.done && (this.started || this.reports.size > 0);
  }

  /** What rank `rank` reads in the next step; the step counts as begun from now. */
  assign(rank: number): Split__Output {
    this.started = true;
    return splitOf(this.position.cursor, rank, this.batch);
  }

  /** Whether this worker's report of the next step is in. */
  hasReported(workerId: string): boolean {
    return this.reports.has(workerId);
  }

  /**
   * Checks and records a report of a member of the current generation (the caller has checked the
   * worker and the generation; `rank` is the member's). Throws the refusal of a replayed report, a
   * wrong step, a wrong example count or examples other than the member's assignment.
   */
  accept(report: StepReport__Output, rank: number): void {
    const { worker_id: workerId, step, examples } = report;
    const committed = this.position.committedStep;
    if (step <= committed) {
      throw refusal('replayed_report', `step ${step} is already committed (the last committed step is ${committed})`);
    }
    if (step === committed + 1 && this.reports.has(workerId)) {
      throw refusal('replayed_report', `worker "${workerId}" already reported step ${step}`);
    }
    if (this.done) throw refusal('wrong_step', `step ${step} is past the job's end: the job ended at step ${this.steps}`);
    if (step !== committed + 1) {
      throw refusal('wrong_step', `step ${step} is not the next step: step ${committed} is committed, so the next is ${committed + 1}`);
    }
    if (examples !== this.batch) {
      throw refusal('wrong_example_count', `step ${step} reports ${examples} examples, but the assignment had ${this.batch}`);
    }
    const assigned = this.assign(rank);
    if (Number(report.split_start) !== assigned.start) {
      throw refusal(
        'wrong_range',
        `step ${step} reports examples from position ${report.split_start}, but rank ${rank} was assigned position ${assigned.start}`,
      );
    }
    this.reports.set(workerId, report);
  }

  /** Whether every one of these members (the generation's) has reported the next step. */
  complete(memberIds: readonly string[]): boolean {
    return memberIds.length > 0 && memberIds.every((id) => this.reports.has(id));
  }

  /**
   * Commits the next step, reported by these members (in rank order; see {@link complete}): the
   * cursor moves past the step's world·batch positions, and the checkpoint position moves to the
   * previous commit when a member wrote a checkpoint of it.
   */
  commit(memberIds: readonly string[]): CommittedStep {
    const reports = memberIds.map((id) => this.reports.get(id)!);
    // What the audit trail records: the members' assignments (their reports were checked against them).
    const ranges = memberIds.map((_, rank): [number, number] => {
      const split = this.assign(rank);
      return [split.start, split.count];
    });
    const step = this.position.committedStep + 1;
    const cursor = this.position.cursor + stepExamples(memberIds.length, this.batch);
    // A member writes a checkpoint of the state a step starts from (the last commit) and says so in
    // that step's report: the checkpoint is of the previous step.
    const checkpoint = reports.some((r) => r.checkpoint_written);
    this.position = checkpoint
      ? { committedStep: step, cursor, checkpointStep: this.position.committedStep, checkpointCursor: this.position.cursor }
      : { ...this.position, committedStep: step, cursor };
    this.discard();
    return { step, cursor, reports, ranges, checkpoint };
  }

  /** Forgets the step in flight (its reports and assignments): the generation changed. */
  discard(): void {
    this.reports.clear();
    this.started = false;
  }
}
