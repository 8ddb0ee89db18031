// The lines a run reports (`--json` output, run.jsonl): their field names are an interface that
// scripts and dashboards rely on, built once for the single-process trainer and the coordinator.
import { BOUND_NAMES, type BoundValues } from './estimators.js';
import type { StepMetrics__Output } from '../proto/generated/infobound/v1/StepMetrics.js';

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
  /** Digest of the bank the step scored against: the replica's, or with a partitioned bank every shard's digest in rank order. */
  bank_digest: string;
  /** With a partitioned bank, the digest of this worker's shard (absent when the bank is replicated). */
  bank_shard_digest?: string;
  /** Bank messages stored in the stream that this worker's replica has not read yet (consumer lag). */
  bank_lag: number;
  key_age_steps: number;
  /** Keys of the replica per age bucket (common/key-age-buckets.ts: ages ≤ 1, 2, 4, … 512 steps, then older). */
  key_age_counts: number[];
  step_ms: { data: number; compute: number; allreduce: number; bank_wait: number };
  /** The generation the step was committed in (1 in a single process). */
  generation: number;
  /** Digest of the worker's parameters the step started from (members agree). */
  params_digest: string;
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
  /** Seconds the held-out evaluation took (absent when evaluation is off). */
  eval_seconds?: number;
  /** Members that shared the evaluation, each ranking against its share of the sites (1: rank 0 alone). */
  eval_members?: number;
  skipped_inputs: Record<string, number>;
  checkpoint: string;
  run_dir: string;
  /** The last generation and how many times membership changed after the first (0 in a single process). */
  generation: number;
  restarts: number;
  workers: number;
}

/** The step line of a member's logged step: the figures its report carries, with its rank and generation. */
export function stepLine(m: StepMetrics__Output, rank: number, step: number, generation: number): StepLine {
  const b = m.bounds ?? { infonce: 0, nwj: 0, dv: 0, jsd: 0 };
  return {
    type: 'step',
    worker: rank,
    step,
    epoch: m.epoch,
    loss: m.loss,
    bounds: { infonce: b.infonce, nwj: b.nwj, dv: b.dv, jsd: b.jsd },
    ceiling: m.ceiling,
    temperature: m.temperature,
    accuracy: m.accuracy,
    examples_per_s: m.examples_per_s,
    grad_norm: m.grad_norm,
    bank_fill: m.bank_fill,
    bank_digest: m.bank_digest,
    ...(m.bank_shard_digest !== '' ? { bank_shard_digest: m.bank_shard_digest } : {}),
    bank_lag: m.bank_lag,
    key_age_steps: m.key_age_steps,
    key_age_counts: m.key_age_counts,
    step_ms: { data: m.data_ms, compute: m.compute_ms, allreduce: m.allreduce_ms, bank_wait: m.bank_wait_ms },
    generation,
    params_digest: m.params_digest,
  };
}

/** The bound figures of a run's summary, from its logged step lines (all workers' lines together). */
export function summarizeSteps(lines: readonly StepLine[]): Pick<SummaryLine, 'bounds' | 'initial_bounds' | 'max_infonce'> {
  const tail = lines.slice(Math.floor(lines.length * 0.75));
  const bounds = Object.fromEntries(BOUND_NAMES.map((n) => [n, 0])) as BoundValues;
  for (const l of tail) for (const n of BOUND_NAMES) bounds[n] += l.bounds[n] / tail.length;
  return {
    bounds,
    initial_bounds: lines[0]?.bounds ?? null,
    max_infonce: lines.length > 0 ? Math.max(...lines.map((l) => l.bounds.infonce)) : null,
  };
}

/**
 * Inputs skipped instead of trained on, by reason: the data's bad lines and the bank messages dropped
 * (prefixed `bank_`). Messages of an earlier run of the job are not bad input and are left out.
 */
export function skippedInputs(data: Readonly<Record<string, number>>, bank: Readonly<Record<string, number>>): Record<string, number> {
  const bankDrops = Object.entries(bank)
    .filter(([reason]) => reason !== 'other_run')
    .map(([reason, n]) => [`bank_${reason}`, n] as const);
  return Object.fromEntries([...Object.entries(data), ...bankDrops].filter(([, n]) => n > 0));
}
