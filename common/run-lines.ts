// The lines a run reports (`--json` output, run.jsonl): their field names are an interface that
// scripts and dashboards rely on, shared by the single-process trainer and the coordinator.
import { BOUND_NAMES, type BoundValues } from './estimators.js';

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
  bank_digest: string;
  /** Bank messages stored in the stream that this worker's replica has not read yet (consumer lag). */
  bank_lag: number;
  key_age_steps: number;
  /** Keys of the replica per age bucket (common/key-age-buckets.ts: ages ≤ 1, 2, 4, … 512 steps, then older). */
  key_age_counts: number[];
  step_ms: { data: number; compute: number; allreduce: number; bank_wait: number };
  /** Multi-worker runs: the generation the step was committed in. */
  generation?: number;
  /** Multi-worker runs: digest of the worker's parameters the step started from (members agree). */
  params_digest?: string;
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
  skipped_inputs: Record<string, number>;
  checkpoint: string;
  run_dir: string;
  /** Multi-worker runs: the last generation and how many times membership changed after the first. */
  generation?: number;
  restarts?: number;
  workers?: number;
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
  const bankDrops = Object.entries(bank).filter(([reason]) => reason !== 'other_run').map(([reason, n]) => [`bank_${reason}`, n] as const);
  return Object.fromEntries([...Object.entries(data), ...bankDrops].filter(([, n]) => n > 0));
}
