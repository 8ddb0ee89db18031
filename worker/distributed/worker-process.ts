import { initBackend } from '../../common/backend.js';
import { defaultConfig, validateConfig, type Config } from '../../common/config/mod.js';
import type { InfoboundMetrics } from '../../common/metrics.js';
import { channelCredentials, clientTlsOptions, serverCredentials, serverTlsOptions } from '../../common/tls-credentials.js';
import { UserError } from '../../common/user-error.js';
import { openBankTransport } from '../bank/open-bank-transport.js';
import { RingBankTransport } from '../bank/ring-bank-transport.js';
import type { StreamBankTransport } from '../bank/stream-bank-transport.js';
import { PeerServer } from '../collective/peer-server.js';
import { RingReducer } from '../collective/ring-reducer.js';
import { loadTask } from '../train/load-task.js';
import type { TrainingTask } from '../train/training-task.js';
import { withPreparedData } from '../dataset/prepare-for-run.js';
import { createStepContext } from '../train/step-context.js';
import { runTrainingLoop } from '../train/training-loop.js';
import { TrainingRun } from '../train/training-run.js';
import { CoordinatorClient } from './coordinator-client.js';
import { CoordinatorSchedule } from './coordinator-schedule.js';
import { MembershipSession } from './membership-session.js';

/** Version sent on join: members of a job must run the same build of the training step. */
export const WORKER_VERSION = 'infobound-0.1';

/** How a worker process runs. */
export interface WorkerProcessOptions {
  /** The worker's configuration; its training sections must equal the coordinator's. */
  config: Config;
  /** Where a raw click log is prepared into before training (the run directory); absent: `config.data` is used as it is. */
  prepareInto?: string;
  /** host:port of the coordinator. */
  coordinator: string;
  /** Stable identity (pod name, or host-pid). */
  workerId: string;
  /** The job's join token, or null. */
  token: string | null;
  /** Address the Peer server binds to. */
  peerHost: string;
  /** Port of the Peer server; 0 takes any free port. A fixed one suits network policies. @default 0 */
  peerPort?: number;
  /** Port of the data plane (--data-port); default any free port. */
  dataPort?: number;
  /** Host other workers dial to reach this one (the pod IP in Kubernetes). */
  advertiseHost: string;
  /** Where rank 0 writes checkpoints (the run directory's checkpoint file). */
  checkpointPath: string;
  /**
   * How long to wait for an unreachable coordinator (not started yet, restarting) and for a new
   * generation after a failed step, ms. @default 60000
   */
  recoveryTimeoutMs?: number;
  /** Prometheus metrics to keep up to date (served by the caller). */
  metrics?: InfoboundMetrics;
  /**
   * Aborted to take the worker out of a running job (SIGTERM on a scale-down): it finishes the step
   * in flight, leaves, and returns, so the others re-form the ring at once instead of after a
   * heartbeat timeout and an aborted step.
   */
  drain?: AbortSignal;
  /** Sees this worker's local dense gradient before it is checked and reduced (fault injection in tests). */
  localGradientHook?: (grad: Float32Array, step: number) => void;
  info?(message: string): void;
  warn?(message: string): void;
}

/** The sections of the config that every member must share for the ring to compute one update. */
const SHARED_SECTIONS = ['seed', 'train', 'bank', 'temperature', 'clicklog', 'images'] as const;

/**
 * A worker: joins the coordinator and runs the training loop over the coordinator's schedule, with
 * gradients and keys exchanged around the ring; a step is applied only once the coordinator
 * committed it. When the membership changes mid-step (a peer died, a worker joined), the uncommitted
 * step is dropped (no parameter moved yet, so there is nothing to roll back) and the worker carries
 * on in the new generation, where the same step is planned again. Rank 0 writes checkpoints; a
 * worker that joins a job in progress fetches the committed state from a member first.
 */
export async function runWorker(o: WorkerProcessOptions): Promise<void> {
  await initBackend(o.config.backend);
  const credentials = channelCredentials(o.config.tls);
  // Before any long work, so that a bad --bind or --peer-port is said at once.
  // Members only: Collective and FetchState need the job's peer credential, which the membership brings.
  const dataTls = serverTlsOptions(o.config.tls);
  const peer = await PeerServer.start({
    host: o.peerHost,
    port: o.peerPort ?? 0,
    credentials: serverCredentials(o.config.tls),
    requireCredential: true,
    dataPort: o.dataPort ?? 0,
    ...(dataTls ? { dataTls } : {}),
  }).catch((err: Error) => {
    throw new UserError(
      `worker ${o.workerId}: cannot serve Peer on ${o.peerHost}:${o.peerPort ?? 0} (--bind, --peer-port, --data-port): ${err.message.replace(/^.*\[(.*)\]$/, '$1')}`,
    );
  });
  let config: Config;
  let task: TrainingTask<unknown>;
  try {
    // A raw click log is prepared into the run directory first (once, if workers share it), so that
    // the worker reads shards; the coordinator does the same with its own copy.
    config = o.prepareInto === undefined ? o.config : await withPreparedData(o.config, o.prepareInto, o.info, o.warn);
    const loading = performance.now();
    task = await loadTask(config, o.warn);
    o.info?.(`${task.description}; loaded in ${((performance.now() - loading) / 1000).toFixed(1)} s`);
  } catch (err) {
    await peer.close();
    throw err;
  }
  const port = peer.address.slice(peer.address.lastIndexOf(':') + 1);
  const client = new CoordinatorClient(o.coordinator, { credentials });
  const clientTls = clientTlsOptions(o.config.tls);
  const ring = new RingReducer(peer, { channelCredentials: credentials, ...(clientTls ? { dataTls: clientTls } : {}) });
  /** The run, once the first membership gives this member its place (a partitioned bank's shard is sized for it). */
  let run: TrainingRun | undefined;
  /** The NATS bank, once the first membership names the job and run. */
  let nats: StreamBankTransport | undefined;
  let schedule: CoordinatorSchedule | undefined;
  let session: MembershipSession | undefined;
  try {
    session = await MembershipSession.open(client, {
      join: { worker_id: o.workerId, peer_address: `${o.advertiseHost}:${port}`, token: o.token ?? '', version: WORKER_VERSION, epoch_size: task.order.size },
      ...(o.recoveryTimeoutMs !== undefined ? { recoveryMs: o.recoveryTimeoutMs } : {}),
      position: () => ({ generation: schedule?.generation ?? null, step: run?.step ?? 0 }),
      interrupted: (why) => {
        ring.abort(why);
        nats?.abort(why);
      },
      ...(o.warn ? { warn: o.warn } : {}),
    });
    adoptJobConfig(config, session.latest.config_json);
    const ctx = createStepContext(config, task, new RingBankTransport(ring, config.bank.staleness), { rank: session.latest.rank, world: session.latest.world });
    ctx.reducer = ring;
    if (o.localGradientHook !== undefined) ctx.localGradientHook = o.localGradientHook;
    const started = new TrainingRun(config, task, ctx, o.checkpointPath);
    run = started;
    peer.setStateProvider(async () => started.snapshot());
    if (config.nats.url !== null) {
      nats = await openBankTransport(config, task.model, {
        job: session.latest.job,
        runId: session.latest.run_id,
        bankKey: session.latest.bank_key,
        clientName: o.workerId,
      });
      ctx.transport = nats;
    }
    schedule = new CoordinatorSchedule(started, session, {
      workerId: o.workerId,
      client,
      ring,
      ...(nats !== undefined ? { nats } : {}),
      credentials,
      ...(o.drain ? { drain: o.drain } : {}),
      ...(o.metrics ? { metrics: o.metrics } : {}),
      ...(o.info ? { info: o.info } : {}),
      ...(o.warn ? { warn: o.warn } : {}),
    });
    await runTrainingLoop(started, schedule, {
      ...(o.info ? { info: o.info } : {}),
      ...(o.warn ? { warn: o.warn } : {}),
      ...(o.metrics ? { metrics: o.metrics } : {}),
    });
  } finally {
    session?.close();
    await nats?.close();
    ring.close();
    await peer.close();
    client.close();
  }
}

/**
 * Checks this worker's config against the job's (the coordinator's): the sections every member must
 * share are refused when they differ, and the evaluation settings are the job's, taken as they are
 * (`infobound coordinator --sites-sample` decides them for every member).
 */
function adoptJobConfig(mine: Config, coordinatorJson: string): void {
  if (coordinatorJson === '') return;
  const theirs = JSON.parse(coordinatorJson) as Record<string, unknown>;
  Object.assign(mine.eval, validateConfig({ ...defaultConfig(), eval: theirs.eval }, 'from the coordinator').eval);
  // Every member must carry the bank the same way: a replica fed over NATS cannot meet one fed around the ring.
  const theirNats = (theirs.nats as { url?: string | null } | undefined)?.url ?? null;
  if ((mine.nats.url === null) !== (theirNats === null)) {
    throw new UserError(
      `this worker's bank transport differs from the coordinator's: nats.url is ${mine.nats.url ?? 'null'} here, ${theirNats ?? 'null'} there`,
    );
  }
  for (const section of SHARED_SECTIONS) {
    // A member's thread count is its machine's business, not the update's.
    const a = JSON.stringify(section === 'train' ? { ...mine.train, threads: 0 } : mine[section]);
    const b = JSON.stringify(section === 'train' ? { ...(theirs.train as object), threads: 0 } : theirs[section]);
    if (a !== b) throw new UserError(`this worker's config differs from the coordinator's in "${section}": ${a} vs ${b}`);
  }
}
