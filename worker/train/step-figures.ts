import { createHash } from 'node:crypto';
import type { StepMetrics__Output } from '../../proto/generated/infobound/v1/StepMetrics.js';
import { wholeBankFilled, wholeBankSize } from '../bank/member-bank.js';
import type { StepResult } from './contrastive-step.js';
import type { TrainingRun } from './training-run.js';

/**
 * A step's figures: every field of its step line, as its report to the coordinator (or the local
 * schedule) carries them, and what the process's Prometheus metrics read.
 */
export type StepFigures = StepMetrics__Output;

/** Timings and rate the loop measured around the step. */
export interface StepTiming {
  dataMs: number;
  /** Examples per second of this member over the steps since the last logged one. */
  examplesPerS: number;
}

/** The figures of a computed step that reads the examples from stream position `start`. */
export async function stepFigures(r: StepResult, run: TrainingRun, step: number, start: number, t: StepTiming): Promise<StepFigures> {
  const { bank, transport } = run.ctx;
  // Digests hash the whole bank and parameters (megabytes): only logged steps, which become step lines, carry them.
  const logged = r.bounds !== undefined;
  return {
    loss: r.loss,
    bounds: r.bounds ?? { infonce: 0, nwj: 0, dv: 0, jsd: 0 },
    ceiling: r.ceiling,
    temperature: 1 / r.scale,
    accuracy: r.accuracy ?? 0,
    examples_per_s: t.examplesPerS,
    grad_norm: r.gradNorm,
    bank_fill: wholeBankFilled(bank) / wholeBankSize(bank),
    bank_digest: logged ? (r.bankDigest ?? bank.digest()) : '',
    bank_shard_digest: r.bankShardDigest ?? '',
    bank_lag: logged ? await transport.lag() : 0,
    key_age_steps: logged ? bank.meanKeyAge(step) : 0,
    key_age_counts: logged ? bank.keyAgeCounts(step) : [],
    data_ms: t.dataMs,
    compute_ms: r.computeMs,
    allreduce_ms: r.allReduceMs,
    bank_wait_ms: r.bankWaitMs,
    params_digest: logged ? digest(run.task.model.online.values) : '',
    logged,
    epoch: run.task.order.epochOf(start),
  };
}

function digest(values: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength))
    .digest('hex')
    .slice(0, 16);
}
