/**
 * The Prometheus metrics of every Infobound process (docs/architecture.md §2), defined once so that the trainer,
 * the workers, the coordinator, the Grafana dashboard and the Kubernetes manifests agree on names.
 * Names follow Prometheus conventions: an `infobound_` prefix, base units, `_total` on counters, and
 * only low-cardinality labels (estimator, phase, reason; the scrape adds the instance).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BoundValues } from './estimators.js';
import type { StepMetrics__Output } from '../proto/generated/infobound/v1/StepMetrics.js';
import { KEY_AGE_BUCKETS } from './key-age-buckets.js';
import { MEMORY_PARTS, type MemoryBytes } from './memory-parts.js';

/** Every metric name, for the dashboard and manifest checks. */
export const METRIC_NAMES = {
  bound: 'infobound_mi_bound_nats',
  ceiling: 'infobound_mi_ceiling_nats',
  trueMi: 'infobound_true_mi_nats',
  loss: 'infobound_loss_nats',
  temperature: 'infobound_temperature',
  accuracy: 'infobound_queue_accuracy_ratio',
  steps: 'infobound_steps_total',
  examples: 'infobound_examples_total',
  examplesPerSecond: 'infobound_examples_per_second',
  stepPhase: 'infobound_step_phase_seconds',
  allreduceBytes: 'infobound_allreduce_bytes_total',
  allreduceSeconds: 'infobound_allreduce_seconds',
  bankFill: 'infobound_bank_fill_ratio',
  bankLag: 'infobound_bank_lag_messages',
  bankKeys: 'infobound_bank_keys',
  bankKeyAge: 'infobound_bank_key_age_mean_steps',
  generation: 'infobound_generation',
  members: 'infobound_members',
  restarts: 'infobound_restarts_total',
  committedSteps: 'infobound_committed_steps_total',
  committedExamples: 'infobound_committed_examples_total',
  skipped: 'infobound_skipped_inputs_total',
  refused: 'infobound_refused_requests_total',
  checkpointAge: 'infobound_checkpoint_age_seconds',
  memory: 'infobound_memory_bytes',
} as const;

/** The phases a step's wall time is split into. */
export const STEP_PHASES = ['data', 'compute', 'allreduce', 'bank_wait'] as const;
export type StepPhase = (typeof STEP_PHASES)[number];

/** One process's metrics on its own registry (so tests can hold several in one process). */
export class InfoboundMetrics {
  readonly registry = new Registry();
  private readonly bound: Gauge<'estimator'>;
  private readonly ceiling: Gauge;
  private readonly trueMi: Gauge;
  private readonly loss: Gauge;
  private readonly temperature: Gauge;
  private readonly accuracy: Gauge;
  private readonly steps: Counter;
  private readonly examples: Counter;
  private readonly examplesPerSecond: Gauge;
  private readonly stepPhase: Histogram<'phase'>;
  private readonly allreduceBytes: Counter;
  private readonly allreduceSeconds: Histogram;
  private readonly bankFill: Gauge;
  private readonly bankLag: Gauge;
  private readonly bankKeys: Gauge<'max_age_steps'>;
  private readonly bankKeyAge: Gauge;
  private readonly generation: Gauge;
  private readonly members: Gauge;
  private readonly restarts: Counter;
  private readonly committedSteps: Counter;
  private readonly committedExamples: Counter;
  private readonly skipped: Counter<'reason'>;
  private readonly refused: Counter<'reason'>;
  private readonly memoryBytes: Gauge<'part'>;
  private lastCheckpoint: number | null = null;
  private readonly skippedSoFar = new Map<string, number>();
  private readonly refusedSoFar = new Map<string, number>();

  constructor(
    /** `train`, `worker` or `coordinator`: the `role` label of every metric. */
    role: string,
    /** Wall clock in ms (a parameter so tests can move it). */
    private readonly now: () => number = () => performance.timeOrigin + performance.now(),
  ) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ role });
    const n = METRIC_NAMES;
    this.bound = new Gauge({
      name: n.bound,
      help: 'Mutual-information lower bound on the last logged step, by estimator (InfoNCE, NWJ, DV; JSD is not an MI value).',
      labelNames: ['estimator'],
      registers,
    });
    this.ceiling = new Gauge({
      name: n.ceiling,
      help: 'Ceiling log(N) of the InfoNCE bound with N candidates per row (log(K+1) for a K-key bank).',
      registers,
    });
    this.trueMi = new Gauge({ name: n.trueMi, help: 'True mutual information of the data, when the data set declares it.', registers });
    this.loss = new Gauge({ name: n.loss, help: 'Training loss of the last step.', registers });
    this.temperature = new Gauge({ name: n.temperature, help: 'Critic temperature tau of the last step.', registers });
    this.accuracy = new Gauge({ name: n.accuracy, help: '(K+1)-way accuracy of the positive among the bank keys on the last logged step.', registers });
    this.steps = new Counter({ name: n.steps, help: 'Training steps this process finished.', registers });
    this.examples = new Counter({ name: n.examples, help: 'Training examples this process consumed.', registers });
    this.examplesPerSecond = new Gauge({ name: n.examplesPerSecond, help: 'Examples per second of the last step window of this process.', registers });
    this.stepPhase = new Histogram({
      name: n.stepPhase,
      help: 'Wall time of each phase of a step: data, compute, all-reduce, bank wait.',
      labelNames: ['phase'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.allreduceBytes = new Counter({ name: n.allreduceBytes, help: 'Bytes this worker sent in collectives (ring all-reduce and all-gathers).', registers });
    this.allreduceSeconds = new Histogram({
      name: n.allreduceSeconds,
      help: "Wall time of a step's collectives (dense all-reduce and sparse all-gather).",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
    this.bankFill = new Gauge({ name: n.bankFill, help: 'Fraction of the bank replica holding keys.', registers });
    this.bankLag = new Gauge({ name: n.bankLag, help: 'Bank messages in the stream not read by this replica yet (consumer lag).', registers });
    this.bankKeys = new Gauge({
      name: n.bankKeys,
      help: 'Keys in the bank replica no older than max_age_steps steps (cumulative, like histogram buckets).',
      labelNames: ['max_age_steps'],
      registers,
    });
    this.bankKeyAge = new Gauge({ name: n.bankKeyAge, help: "Mean age of the bank replica's keys, in steps.", registers });
    this.generation = new Gauge({ name: n.generation, help: 'Current generation (membership) of the job.', registers });
    this.members = new Gauge({ name: n.members, help: 'Workers in the current generation.', registers });
    this.restarts = new Counter({ name: n.restarts, help: 'Generations formed after the first while training (worker failures, joins).', registers });
    this.committedSteps = new Counter({ name: n.committedSteps, help: 'Steps the coordinator committed.', registers });
    this.committedExamples = new Counter({
      name: n.committedExamples,
      help: "Examples in the steps the coordinator committed (the job's throughput).",
      registers,
    });
    this.skipped = new Counter({
      name: n.skipped,
      help: 'Inputs skipped instead of trained on (bad lines, bad bank messages), by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.refused = new Counter({ name: n.refused, help: 'Requests the coordinator refused, by reason.', labelNames: ['reason'], registers });
    this.memoryBytes = new Gauge({
      name: n.memory,
      help: "Bytes this worker holds, by part: the bank's keys, the sparse tables, optimiser state, dense parameters, loaded data.",
      labelNames: ['part'],
      registers,
    });
    const self = this;
    new Gauge({
      name: n.checkpointAge,
      help: 'Seconds since the last durable checkpoint (absent before the first).',
      registers,
      collect() {
        if (self.lastCheckpoint !== null) this.set((self.now() - self.lastCheckpoint) / 1000);
      },
    });
  }

  /** Records that a durable checkpoint was just written (or committed). */
  checkpointNow(): void {
    this.lastCheckpoint = this.now();
  }

  /**
   * A finished step of this process, with the figures of its report (the fields of its step line);
   * a logged step also carries the bounds and the bank replica's state.
   */
  step(examples: number, f: StepMetrics__Output): void {
    this.steps.inc();
    this.examples.inc(examples);
    this.examplesPerSecond.set(f.examples_per_s);
    const ms: Record<StepPhase, number> = { data: f.data_ms, compute: f.compute_ms, allreduce: f.allreduce_ms, bank_wait: f.bank_wait_ms };
    for (const phase of STEP_PHASES) this.stepPhase.observe({ phase }, ms[phase] / 1000);
    this.loss.set(f.loss);
    this.ceiling.set(f.ceiling);
    this.temperature.set(f.temperature);
    if (!f.logged) return;
    if (f.bounds !== null) this.setBounds(f.bounds);
    this.accuracy.set(f.accuracy);
    this.bankFill.set(f.bank_fill);
    this.bankLag.set(f.bank_lag);
    this.bankKeyAge.set(f.key_age_steps);
    let cumulative = 0;
    f.key_age_counts.forEach((count, i) => {
      cumulative += count;
      this.bankKeys.set({ max_age_steps: i < KEY_AGE_BUCKETS.length ? String(KEY_AGE_BUCKETS[i]) : '+Inf' }, cumulative);
    });
  }

  /** What this worker holds, by part (at start and on every logged step). */
  memory(m: MemoryBytes): void {
    for (const part of MEMORY_PARTS) this.memoryBytes.set({ part }, m[part]);
  }

  /** Bounds of a logged step (the coordinator takes rank 0's). */
  setBounds(b: BoundValues): void {
    for (const [estimator, value] of Object.entries(b)) this.bound.set({ estimator }, value);
  }

  setCeiling(value: number): void {
    this.ceiling.set(value);
  }

  setTrueMi(value: number | null): void {
    if (value !== null) this.trueMi.set(value);
  }

  /** A step's collectives: bytes this worker sent and their wall time (ms). */
  collective(bytes: number, ms: number): void {
    this.allreduceBytes.inc(bytes);
    this.allreduceSeconds.observe(ms / 1000);
  }

  membership(generation: number, members: number, restart: boolean): void {
    this.generation.set(generation);
    this.members.set(members);
    if (restart) this.restarts.inc();
  }

  /** A step the coordinator committed, with its examples. */
  commit(examples: number): void {
    this.committedSteps.inc();
    this.committedExamples.inc(examples);
  }

  /**
   * Skip counts so far by reason (counters only move up: the difference is added). A reason seen at 0
   * is exported at 0, so that dashboards find the series before the first skip.
   */
  skippedInputs(totals: Readonly<Record<string, number>>): void {
    addTotals(this.skipped, this.skippedSoFar, totals);
  }

  /**
   * Refusal counts so far by reason, for refusals counted elsewhere (a worker's Peer server: its
   * reasons are prefixed `peer_`), exported as {@link skippedInputs} exports skips.
   */
  refusedTotals(totals: Readonly<Record<string, number>>): void {
    addTotals(this.refused, this.refusedSoFar, totals);
  }

  /** Exports every reason the coordinator can refuse a request for, at 0 until it happens. */
  refusalReasons(reasons: readonly string[]): void {
    for (const reason of reasons) this.refused.inc({ reason }, 0);
  }

  refusal(reason: string): void {
    this.refused.inc({ reason });
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}

/** Adds to `counter` what each reason's running total grew by since `soFar` last saw it. */
function addTotals(counter: Counter<'reason'>, soFar: Map<string, number>, totals: Readonly<Record<string, number>>): void {
  for (const [reason, total] of Object.entries(totals)) {
    const before = soFar.get(reason) ?? 0;
    counter.inc({ reason }, Math.max(0, total - before));
    soFar.set(reason, Math.max(before, total));
  }
}
