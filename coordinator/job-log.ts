import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveKind, type Config } from '../common/config/mod.js';
import type { InfoboundMetrics } from '../common/metrics.js';
import { stepLine, summarizeSteps, type StepLine, type SummaryLine } from '../common/run-lines.js';
import { UserError } from '../common/user-error.js';
import type { CommitEvent, CoordinatorObserver, LeaveEvent, MembershipEvent } from './coordinator-server.js';
import { REFUSAL_REASONS } from './rpc-failure.js';
import type { ShardRange } from '../worker/dataset/sharded-example-order.js';

/** The checkpoint rank 0 writes in the run directory. */
export const CHECKPOINT_FILE = 'checkpoint.ibck';

/** Options of a {@link JobLog}. */
export interface JobLogOptions {
  /** World size the job was started with (the summary's `workers`). */
  workers: number;
  /** Called with every logged step line of every member. */
  step?(line: StepLine): void;
  /** The job's Prometheus metrics to keep up to date (served by the caller). */
  metrics?: InfoboundMetrics;
  /** Where a range of stream positions reads in the shards of a prepared dataset, for each commit line. */
  shardRanges?(start: number, count: number): ShardRange[];
  info?(message: string): void;
}

/** What a member sends when it leaves at the end (LeaveRequest.summary_json). */
interface MemberFinal {
  eval?: Record<string, number | null>;
  eval_seconds?: number;
  eval_members?: number;
  true_mi?: number | null;
  skipped_inputs?: Record<string, number>;
  /** Set when the member stopped the run on an error every member reached. */
  error?: string;
}

/**
 * A job's log in its run directory, fed by the coordinator's events (or, in a single process, by the
 * local schedule's): `run.jsonl` (every logged step line of every member, then the summary),
 * `commits.jsonl` (each committed step with every member's stream range, and on a prepared dataset
 * the shard blocks it read: the audit trail of exactly-once data) and `config.json`. The summary is built here, once, for every mode.
 */
export class JobLog {
  /** Resolves with the summary once the last step committed and rank 0 left with its figures; rejects when a member stopped the run. */
  readonly summary: Promise<SummaryLine>;

  private readonly logPath: string;
  private readonly commitsPath: string;
  private readonly lines: StepLine[] = [];
  /** Appends run one after the other, so that lines land in the order they were logged; this is the end of the chain. */
  private writes: Promise<void> = Promise.resolve();
  private readonly started = performance.now();
  private trainedSeconds = 0;
  private generations = 0;
  /** The generation that committed the last step. */
  private lastGeneration = 0;
  private committedExamples = 0;
  private lastStep = 0;
  private finished = false;
  /** Members of the current generation (the last membership seen). */
  private members = 0;
  private settle: (final: MemberFinal) => void = () => {};

  constructor(
    private readonly config: Config,
    private readonly runDir: string,
    private readonly o: JobLogOptions,
  ) {
    this.logPath = join(runDir, 'run.jsonl');
    this.commitsPath = join(runDir, 'commits.jsonl');
    o.metrics?.refusalReasons(REFUSAL_REASONS);
    this.summary = new Promise<MemberFinal>((resolve) => (this.settle = resolve)).then((final) => this.writeSummary(final));
  }

  /** The coordinator's observer that feeds this log. */
  observer(): CoordinatorObserver {
    return {
      commit: (e) => this.commit(e),
      membership: (m) => this.membership(m),
      left: (e) => this.left(e),
      refused: (reason, message) => {
        this.o.metrics?.refusal(reason);
        this.o.info?.(`refused (${reason}): ${message}`);
      },
      done: () => this.done(),
    };
  }

  /** A committed step: its audit line, its members' step lines and the job's metrics. */
  commit(e: CommitEvent): void {
    const { metrics } = this.o;
    const refused = e.reports.find((r) => r.refused !== '')?.refused ?? '';
    this.append(
      this.commitsPath,
      JSON.stringify({
        step: e.step,
        generation: e.generation,
        world: e.world,
        epoch: e.epoch,
        epoch_size: e.epochSize,
        cursor: e.cursor,
        ranges: e.ranges,
        ...(this.o.shardRanges ? { shard_ranges: e.ranges.map(([start, count]) => this.o.shardRanges!(start, count)) } : {}),
        ...(refused !== '' ? { refused } : {}),
      }) + '\n',
    );
    this.lastStep = e.step;
    this.lastGeneration = e.generation;
    this.trainedSeconds = (performance.now() - this.started) / 1000;
    if (e.checkpoint) metrics?.checkpointNow();
    // A refused step applied nothing: no examples trained, no step lines.
    if (refused !== '') return;
    const examples = e.reports.reduce((n, r) => n + r.examples, 0);
    this.committedExamples += examples;
    metrics?.commit(examples);
    // The job's figures are rank 0's: every rank scores its own batch against the same bank.
    const head = e.reports[0]?.metrics;
    if (head?.logged) {
      if (head.bounds !== null) metrics?.setBounds(head.bounds);
      metrics?.setCeiling(head.ceiling);
    }
    e.reports.forEach((r, rank) => {
      if (!r.metrics?.logged) return;
      const line = stepLine(r.metrics, rank, e.step, e.generation);
      this.lines.push(line);
      this.o.step?.(line);
      this.append(this.logPath, JSON.stringify(line) + '\n');
    });
  }

  /** The job's last step committed: members now leave. */
  done(): void {
    this.finished = true;
  }

  /** A new generation formed. */
  membership(m: MembershipEvent): void {
    // Members leaving at the end re-form generations too; those are not restarts.
    this.o.metrics?.membership(m.generation, m.members.length, !this.finished && this.generations > 0);
    if (!this.finished) this.generations++;
    // Everyone is gone without rank 0's figures (it died during evaluation): summarise without them.
    // When the last member left on purpose, its Leave (with the figures) is reported right after this.
    else if (m.members.length === 0 && !m.removed.some((r) => r.cause === 'left')) this.settle({});
    this.members = m.members.length;
    // A resumed job starts where its checkpoint stood.
    this.lastStep = Math.max(this.lastStep, m.committedStep);
    const removed = m.removed.length > 0 ? `; removed ${m.removed.map((r) => `${r.workerId} (${r.cause})`).join(', ')}` : '';
    this.o.info?.(`generation ${m.generation}: ${m.members.length} members${removed}`);
  }

  /** A member left on purpose, perhaps with its final figures. */
  left(e: LeaveEvent): void {
    const final = this.memberFinal(e);
    if (final.error !== undefined) this.settle(final);
    else if (e.rank === 0 && e.summaryJson !== '') this.settle(final);
    else if (this.finished && this.members === 0) this.settle({});
  }

  /** Appends `text` to `path` after every earlier append (concurrent appends to one file may land out of order). */
  private append(path: string, text: string): void {
    // A failed append (no space, say) stops the log there and fails the summary with its error.
    this.writes = this.writes.then(() => appendFile(path, text));
    void this.writes.catch(() => {});
  }

  /** A leaving member's final figures; figures that are not a JSON object are left out, with a line. */
  private memberFinal(e: LeaveEvent): MemberFinal {
    if (e.summaryJson === '') return {};
    try {
      const parsed: unknown = JSON.parse(e.summaryJson);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as MemberFinal;
    } catch {
      // Reported below.
    }
    this.o.info?.(`worker "${e.workerId}" left with final figures that are not a JSON object; left out`);
    return {};
  }

  private async writeSummary(final: MemberFinal): Promise<SummaryLine> {
    await this.writes;
    if (final.error !== undefined) throw new UserError(final.error);
    const { config, runDir } = this;
    const seconds = this.trainedSeconds;
    const last = this.lines.at(-1);
    const s: SummaryLine = {
      type: 'summary',
      kind: resolveKind(config),
      steps: this.lastStep,
      examples: this.committedExamples,
      seconds,
      examples_per_s: this.committedExamples / Math.max(seconds, 1e-9),
      ...summarizeSteps(this.lines),
      ceiling: last?.ceiling ?? Math.log(config.bank.size + 1),
      true_mi: final.true_mi ?? null,
      temperature: last?.temperature ?? config.temperature.value,
      eval: final.eval ?? {},
      ...(final.eval_seconds !== undefined ? { eval_seconds: final.eval_seconds } : {}),
      ...(final.eval_members !== undefined ? { eval_members: final.eval_members } : {}),
      skipped_inputs: Object.fromEntries(Object.entries(final.skipped_inputs ?? {}).filter(([, n]) => n > 0)),
      checkpoint: join(runDir, CHECKPOINT_FILE),
      run_dir: runDir,
      generation: this.lastGeneration,
      restarts: Math.max(0, this.generations - 1),
      workers: this.o.workers,
    };
    await appendFile(this.logPath, JSON.stringify(s) + '\n');
    await writeFile(join(runDir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    return s;
  }
}
