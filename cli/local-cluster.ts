import { outputDirectory } from '../common/output-directory.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveRunDir, type Config } from '../common/config/mod.js';
import type { StepLine, SummaryLine } from '../common/run-lines.js';
import { UserError } from '../common/user-error.js';
import { runCoordinator } from '../coordinator/coordinator-job.js';
import { jobEpochOf } from '../worker/train/load-task.js';
import { withPreparedData } from '../worker/dataset/prepare-for-run.js';
import { startMetricsEndpoint } from './metrics-endpoint.js';

const BIN = fileURLToPath(new URL('../../bin/infobound.js', import.meta.url));

/** How long the workers get to exit on their own once the job's summary is in, ms. */
const WORKER_EXIT_GRACE_MS = 5000;

/** Resolves once the child has exited. */
function exitOf(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}

/** Options of {@link runLocalCluster}. */
export interface LocalClusterOptions {
  workers: number;
  /** Prometheus metrics: the coordinator's at this port on 127.0.0.1, worker i's at port + 1 + i. */
  metricsPort?: number;
  step?(line: StepLine): void;
  info?(message: string): void;
}

/**
 * `infobound train --workers N`: a coordinator in this process and N `infobound worker` processes on
 * loopback, the same code path as a cluster. A worker that fails ends the run with its error.
 */
export async function runLocalCluster(config: Config, o: LocalClusterOptions): Promise<SummaryLine> {
  const runDir = resolveRunDir(config);
  outputDirectory('--run-dir', runDir);
  // The workers share this machine's cores: each takes an Nth unless the config says otherwise.
  const threads = config.train.threads > 0 ? config.train.threads : Math.max(1, Math.floor(availableParallelism() / o.workers));
  // A raw click log is prepared into the run directory once, here: the workers read its shards.
  const job: Config = await withPreparedData({ ...config, run_dir: runDir, train: { ...config.train, threads } }, runDir, o.info, o.info);
  // JSON is YAML: the workers read the very config the coordinator serves.
  const configPath = join(runDir, 'cluster-config.json');
  writeFileSync(configPath, JSON.stringify(job, null, 2) + '\n');
  const token = randomBytes(16).toString('hex');
  const endpoint = await startMetricsEndpoint('coordinator', o.metricsPort?.toString(), '127.0.0.1', o.info);
  const run = await runCoordinator(job, {
    workers: o.workers,
    epoch: () => jobEpochOf(job),
    token,
    step: o.step,
    info: o.info,
    ...(endpoint.metrics !== undefined ? { metrics: endpoint.metrics } : {}),
  });
  const children: ChildProcess[] = [];
  // Stopped with SIGTERM or Ctrl-C, the run takes its workers with it rather than leaving them orphaned.
  const onSignal = () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    process.exit(130);
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    const failed = new Promise<never>((_, reject) => {
      for (let i = 0; i < o.workers; i++) {
        const metrics = o.metricsPort !== undefined ? ['--metrics-port', String(o.metricsPort + 1 + i)] : [];
        const child = spawn(process.execPath, [BIN, 'worker', '--coordinator', run.address, '--config', configPath, '--worker-id', `worker-${i}`, ...metrics], {
          stdio: ['ignore', 'ignore', 'pipe'],
          env: { ...process.env, INFOBOUND_TOKEN: token },
        });
        children.push(child);
        let lastLine = '';
        child.stderr!.setEncoding('utf8');
        child.stderr!.on('data', (text: string) => {
          for (const line of text.split('\n').filter((l) => l.length > 0)) {
            lastLine = line;
            o.info?.(`[worker-${i}] ${line.replace(/^infobound( worker [^:]*)?: /, '')}`);
          }
        });
        child.on('exit', (code, signal) => {
          if (code !== 0) reject(new UserError(`worker-${i} exited with ${signal ?? `code ${code}`}: ${lastLine.replace(/^infobound( worker [^:]*)?: /, '')}`));
        });
      }
    });
    const summary = await Promise.race([run.summary, failed]);
    // The workers have left with their figures and are exiting: a moment for that before they are told to.
    await Promise.race([Promise.all(children.map(exitOf)), delay(WORKER_EXIT_GRACE_MS, undefined, { ref: false })]);
    return summary;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await run.close();
    await endpoint.close();
  }
}
