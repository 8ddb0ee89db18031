import { outputDirectory } from '../common/output-directory.js';
import { resolveRunDir, type Config } from '../common/config/mod.js';
import type { InfoboundMetrics } from '../common/metrics.js';
import type { StepLine, SummaryLine } from '../common/run-lines.js';
import { serverCredentials } from '../common/tls-credentials.js';
import { CoordinatorServer } from './coordinator-server.js';
import type { JobEpoch } from '../worker/train/load-task.js';
import { JobLog } from './job-log.js';
import { RunDirectoryLease } from './run-directory-lease.js';

/** A running job, as {@link runCoordinator} returns it. */
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
  /**
   * The epoch of the job's data, from the coordinator's own config (worker/train/load-task.ts
   * jobEpochOf); called once the run directory's lease is held.
   */
  epoch(): Promise<JobEpoch>;
  /** Address to listen on. @default '127.0.0.1' */
  host?: string;
  /** Port to listen on; 0 takes a free one. @default 0 */
  port?: number;
  token: string | null;
  /** A member silent this long is removed and the others go on in a new generation, ms. @default 3000 */
  heartbeatTimeoutMs?: number;
  /** Called with every logged step line of every worker. */
  step?(line: StepLine): void;
  /** The job's Prometheus metrics to keep up to date (served by the caller). */
  metrics?: InfoboundMetrics;
  info?(message: string): void;
}

/**
 * Starts a coordinator for `config` with the job's log in its run directory: the path both
 * `infobound coordinator` and `infobound train --workers N` take.
 */
export async function runCoordinator(config: Config, o: RunCoordinatorOptions): Promise<CoordinatorRun> {
  const runDir = resolveRunDir(config);
  outputDirectory('--run-dir', runDir);
  // Before anything in the directory is read or written: one coordinator per job.
  const lease = await RunDirectoryLease.acquire(runDir);
  let server: CoordinatorServer;
  let log: JobLog;
  try {
    const epoch = await o.epoch();
    log = new JobLog(config, runDir, {
      workers: o.workers,
      ...(epoch.shardRanges ? { shardRanges: epoch.shardRanges } : {}),
      ...(o.step ? { step: o.step } : {}),
      ...(o.metrics ? { metrics: o.metrics } : {}),
      ...(o.info ? { info: o.info } : {}),
    });
    server = await CoordinatorServer.start({
      host: o.host ?? '127.0.0.1',
      port: o.port ?? 0,
      token: o.token,
      credentials: serverCredentials(config.tls),
      certificateIdentity: config.tls.ca !== null && config.tls.mutual && config.tls.worker_identity === 'certificate',
      workers: o.workers,
      epochSize: epoch.size,
      config,
      stateDir: runDir,
      ...(o.heartbeatTimeoutMs !== undefined ? { heartbeatTimeoutMs: o.heartbeatTimeoutMs } : {}),
      observer: log.observer(),
      lease,
    });
  } catch (err) {
    await lease.release();
    throw err;
  }
  o.info?.(`coordinator listening on ${server.address}; waiting for ${o.workers} workers; run directory ${runDir}`);
  if (o.token === null || o.token === '') {
    const channel = config.tls.ca === null ? ' and the channels are plaintext (no tls section)' : '';
    o.info?.(`warning: no join token${channel}: anyone who can reach ${server.address} can join this job and read its config; set --token or INFOBOUND_TOKEN`);
  }
  // Another coordinator that took the directory over ends this job here: it must not write on.
  const lost = lease.lost.catch(async (err: Error) => {
    await server.close();
    throw err;
  });
  return {
    address: server.address,
    summary: Promise.race([log.summary, lost]),
    close: async () => {
      await server.close();
      await lease.release();
    },
  };
}
