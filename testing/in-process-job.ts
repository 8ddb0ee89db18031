import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Config } from '../common/config/mod.js';
import type { SummaryLine } from '../common/run-lines.js';
import { runCoordinator } from '../coordinator/coordinator-job.js';
import { CHECKPOINT_FILE } from '../coordinator/job-log.js';
import { runWorker } from '../worker/distributed/worker-process.js';
import { jobEpochOf } from '../worker/train/load-task.js';
import { withPreparedData } from '../worker/dataset/prepare-for-run.js';

/** Options of {@link runInProcessJob}. */
export interface InProcessJobOptions {
  workers: number;
  heartbeatTimeoutMs?: number;
  /** Per rank: a hook on the worker's local dense gradient (fault injection). */
  gradientHooks?: ((grad: Float32Array, step: number) => void)[];
}

/**
 * A coordinator and `workers` workers in this process, on loopback, with the job's run directory from
 * `config.run_dir` (a raw click log prepared into it first, as `train --workers N` does): the cluster code path without child processes, so that a test can reach into a
 * worker (a gradient hook). Resolves with the job's summary and each worker's end.
 */
export async function runInProcessJob(
  t: TestContext,
  given: Config,
  o: InProcessJobOptions,
): Promise<{ summary: Promise<SummaryLine>; workers: Promise<void>[] }> {
  // As `train --workers N` does: a raw click log is prepared into the run directory first.
  const config = await withPreparedData(given, given.run_dir!);
  const run = await runCoordinator(config, {
    workers: o.workers,
    epoch: () => jobEpochOf(config),
    token: null,
    ...(o.heartbeatTimeoutMs !== undefined ? { heartbeatTimeoutMs: o.heartbeatTimeoutMs } : {}),
  });
  t.after(() => run.close());
  const workers = Array.from({ length: o.workers }, (_, i) => {
    const hook = o.gradientHooks?.[i];
    return runWorker({
      config,
      coordinator: run.address,
      workerId: `w${i}`,
      token: null,
      peerHost: '127.0.0.1',
      advertiseHost: '127.0.0.1',
      checkpointPath: join(config.run_dir!, CHECKPOINT_FILE),
      recoveryTimeoutMs: 20_000,
      ...(hook !== undefined ? { localGradientHook: hook } : {}),
    });
  });
  // A failing worker must not leave an unhandled rejection behind while the test awaits something else.
  for (const w of workers) w.catch(() => {});
  // The coordinator closes once the job is over, before the summary is handed on: its last state
  // write must not land in a run directory the test's cleanup is removing.
  const closed = Promise.allSettled([run.summary, ...workers]).then(() => run.close());
  const summary = run.summary.then(
    async (s) => {
      await closed;
      return s;
    },
    async (err: unknown) => {
      await closed;
      throw err;
    },
  );
  summary.catch(() => {});
  return { summary, workers };
}
