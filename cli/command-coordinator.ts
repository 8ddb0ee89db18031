import { mkdirSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig, resolveKind, resolveRunDir, type Config } from '../common/config/mod.js';
import type { InfoboundMetrics } from '../common/metrics.js';
import { REFUSAL_REASONS } from '../coordinator/rpc-failure.js';
import { summarizeSteps, type StepLine, type SummaryLine } from '../common/run-lines.js';
import { serverCredentials } from '../common/tls-credentials.js';
import { CoordinatorServer, type CommitEvent } from '../coordinator/coordinator-server.js';
import type { StepReport__Output } from '../proto/generated/infobound/v1/StepReport.js';
import { formatSummary, printStepLine } from './command-train.js';
import { configFlagOptions, configFlagUsage, parseFlags, portNumber, positiveInt, usageLine } from './parse-flags.js';
import { startMetricsEndpoint } from './metrics-endpoint.js';

/** The config fields `coordinator` takes as flags. */
const FIELD_FLAGS = ['data', 'run-dir', 'nats'] as const;

export const COORDINATOR_USAGE = `${usageLine('coordinator', [
  '[--config FILE]',
  ...configFlagUsage(FIELD_FLAGS),
  '[--port P]',
  '[--workers N]',
  '[--host H]',
  '[--token TOKEN]',
  '[--heartbeat-timeout MS]',
  '[--metrics-port P]',
  '[--json]',
])}

Serves a job's membership, data plan and step commits to N workers (infobound worker). With --json,
stdout carries one JSON line per worker per logged step and the summary (with generation and restarts).
The run directory gets run.jsonl, commits.jsonl (every committed step's stream ranges) and the
coordinator's state file; a coordinator started again on it resumes from the last checkpoint.
The join token may also come from INFOBOUND_TOKEN. --nats URL (config nats.url) tells the workers to
carry the bank over NATS JetStream; every worker must then be given it too. --metrics-port P serves
Prometheus metrics at http://HOST:P/metrics.`;

/** What a running job reports to the caller of {@link runCoordinator}. */
export interface CoordinatorRun {
  /** host:port workers dial. */
  address: string;
  /** Resolves with the summary once the last step committed and rank 0 left with its evaluation. */
  summary: Promise<SummaryLine>;
  close(): Promise<void>;
}

/** Options of {@link runCoordinator}. */
export interface RunCoordinatorOptions {
  workers: number;
  host?: string;
  port?: number;
  token: string | null;
  /** A member silent this long is removed and the others go on in a new generation, ms. */
  heartbeatTimeoutMs?: number;
  /** Called with every logged step line of every worker. */
  step?(line: StepLine): void;
  /** The job's Prometheus metrics to keep up to date (served by the caller). */
  metrics?: InfoboundMetrics;
  info?(message: string): void;
}

/**
 * Starts a coordinator for `config` and assembles the job's step lines and summary from the members'
 * reports: the path both `infobound coordinator` and `infobound train --workers N` take.
 */
export async function runCoordinator(config: Config, o: RunCoordinatorOptions): Promise<CoordinatorRun> {
  const kind = resolveKind(config);
  const runDir = resolveRunDir(config);
  mkdirSync(runDir, { recursive: true });
  const logPath = join(runDir, 'run.jsonl');
  // One line per committed step with every member's stream range: the audit trail of exactly-once data.
  const commitsPath = join(runDir, 'commits.jsonl');
  const lines: StepLine[] = [];
  let generations = 0;
  let lastGeneration = 0;
  let committedExamples = 0;
  let lastStep = 0;
  let finished = false;
  /** Members of the current generation (the last membership seen). */
  let members = 0;
  const started = performance.now();
  let finish: (s: Record<string, unknown>) => void = () => {};
  const rank0Summary = new Promise<Record<string, unknown>>((resolve) => (finish = resolve));
  const writes: Promise<void>[] = [];
  o.metrics?.refusalReasons(REFUSAL_REASONS);
  const server = await CoordinatorServer.start({
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 0,
    token: o.token,
    credentials: serverCredentials(config.tls),
    workers: o.workers,
    config,
    stateDir: runDir,
    ...(o.heartbeatTimeoutMs !== undefined ? { heartbeatTimeoutMs: o.heartbeatTimeoutMs } : {}),
    observer: {
      commit: (e: CommitEvent) => {
        committedExamples += e.world * config.train.batch;
        o.metrics?.commit(e.world * config.train.batch);
        if (e.checkpoint) o.metrics?.checkpointNow();
        // The job's figures are rank 0's: every rank scores its own batch against the same bank.
        const head = e.reports[0]?.metrics;
        if (head?.logged) {
          o.metrics?.setBounds(head.bounds ?? { infonce: 0, nwj: 0, dv: 0, jsd: 0 });
          o.metrics?.setCeiling(head.ceiling);
        }
        lastStep = e.step;
        const ranges = e.reports.map((r) => [r.split_start, r.examples]);
        writes.push(appendFile(commitsPath, JSON.stringify({ step: e.step, generation: e.generation, world: e.world, epoch: e.epoch, cursor: e.cursor, ranges }) + '\n'));
        e.reports.forEach((r, rank) => {
          if (!r.metrics?.logged) return;
          const line = stepLine(r, rank, e);
          lines.push(line);
          o.step?.(line);
          writes.push(appendFile(logPath, JSON.stringify(line) + '\n'));
        });
      },
      membership: (m) => {
        // Members leaving at the end re-form generations too; those are not restarts.
        o.metrics?.membership(m.generation, m.members.length, !finished && generations > 0);
        if (!finished) generations++;
        // Everyone is gone without rank 0's figures (it died during evaluation): summarise without them.
        // When the last member left on purpose, its Leave (with the figures) is reported right after this.
        else if (m.members.length === 0 && !m.removed.some((r) => r.cause === 'left')) finish({});
        members = m.members.length;
        lastGeneration = m.generation;
        o.info?.(`generation ${m.generation}: ${m.members.length} members${m.removed.length > 0 ? `; removed ${m.removed.map((r) => `${r.workerId} (${r.cause})`).join(', ')}` : ''}`);
      },
      left: (e) => {
        if (e.rank === 0 && e.summaryJson !== '') finish(JSON.parse(e.summaryJson) as Record<string, unknown>);
        else if (finished && members === 0) finish({});
      },
      refused: (reason, message) => {
        o.metrics?.refusal(reason);
        o.info?.(`refused (${reason}): ${message}`);
      },
      done: () => (finished = true),
    },
  });
  o.info?.(`coordinator listening on ${server.address}; waiting for ${o.workers} workers; run directory ${runDir}`);
  const summary = rank0Summary.then(async (final): Promise<SummaryLine> => {
    await Promise.all(writes);
    const seconds = (performance.now() - started) / 1000;
    const last = lines.at(-1);
    const s: SummaryLine = {
      type: 'summary',
      kind,
      steps: lastStep,
      examples: committedExamples,
      seconds,
      examples_per_s: committedExamples / Math.max(seconds, 1e-9),
      ...summarizeSteps(lines),
      ceiling: last?.ceiling ?? Math.log(config.bank.size + 1),
      true_mi: (final.true_mi as number | null | undefined) ?? null,
      temperature: last?.temperature ?? config.temperature.value,
      eval: (final.eval as Record<string, number | null> | undefined) ?? {},
      skipped_inputs: Object.fromEntries(Object.entries((final.skipped_inputs as Record<string, number>) ?? {}).filter(([, n]) => n > 0)),
      checkpoint: join(runDir, 'checkpoint.ibck'),
      run_dir: runDir,
      generation: lastGeneration,
      restarts: Math.max(0, generations - 1),
      workers: o.workers,
    };
    await appendFile(logPath, JSON.stringify(s) + '\n');
    return s;
  });
  return { address: server.address, summary, close: () => server.close() };
}

function stepLine(r: StepReport__Output, rank: number, e: CommitEvent): StepLine {
  const m = r.metrics!;
  return {
    type: 'step',
    worker: rank,
    step: e.step,
    epoch: m.epoch,
    loss: m.loss,
    bounds: { infonce: m.bounds!.infonce, nwj: m.bounds!.nwj, dv: m.bounds!.dv, jsd: m.bounds!.jsd },
    ceiling: m.ceiling,
    temperature: m.temperature,
    accuracy: m.accuracy,
    examples_per_s: m.examples_per_s,
    grad_norm: m.grad_norm,
    bank_fill: m.bank_fill,
    bank_digest: m.bank_digest,
    bank_lag: m.bank_lag,
    key_age_steps: m.key_age_steps,
    key_age_counts: m.key_age_counts,
    step_ms: { data: m.data_ms, compute: m.compute_ms, allreduce: m.allreduce_ms, bank_wait: m.bank_wait_ms },
    generation: e.generation,
    params_digest: m.params_digest,
  };
}

/** `infobound coordinator`. */
export async function coordinatorCommand(argv: string[]): Promise<number> {
  const values = parseFlags('coordinator', argv, {
    config: { type: 'string' },
    ...configFlagOptions(FIELD_FLAGS),
    port: { type: 'string' },
    host: { type: 'string' },
    workers: { type: 'string' },
    token: { type: 'string' },
    'heartbeat-timeout': { type: 'string' },
    'metrics-port': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(COORDINATOR_USAGE + '\n');
    return 0;
  }
  // loadConfig takes the config flags among the values and leaves the others.
  const config = loadConfig(values.config, values);
  const workers = positiveInt('--workers', values.workers ?? '1');
  const port = values.port === undefined ? 0 : portNumber('--port', values.port);
  const json = values.json === true;
  const say = (m: string) => process.stderr.write(`infobound coordinator: ${m}\n`);
  const endpoint = await startMetricsEndpoint('coordinator', values['metrics-port'], values.host ?? '127.0.0.1', say);
  const run = await runCoordinator(config, {
    workers,
    ...(endpoint.metrics !== undefined ? { metrics: endpoint.metrics } : {}),
    port,
    ...(values.host !== undefined ? { host: values.host } : {}),
    token: values.token ?? process.env.INFOBOUND_TOKEN ?? null,
    ...(values['heartbeat-timeout'] !== undefined ? { heartbeatTimeoutMs: positiveInt('--heartbeat-timeout', values['heartbeat-timeout']) } : {}),
    step: (line) => printStepLine(line, json),
    info: (m) => process.stderr.write(`infobound coordinator: ${m}\n`),
  });
  // SIGTERM (the pod moved or deleted): close cleanly, the state file written, so that a coordinator
  // started again on the run directory resumes the job and the workers reconnect to it.
  const stopped = new Promise<null>((resolve) => process.once('SIGTERM', () => resolve(null)));
  try {
    const summary = await Promise.race([run.summary, stopped]);
    if (summary === null) say('SIGTERM: stopped; start the coordinator again on the same run directory to resume the job');
    else process.stdout.write(json ? JSON.stringify(summary) + '\n' : formatSummary(summary));
  } finally {
    await run.close();
    await endpoint.close();
  }
  return 0;
}

