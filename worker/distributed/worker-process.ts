import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { initBackend } from '../../common/backend.js';
import type { Config } from '../../common/config/mod.js';
import { channelCredentials, serverCredentials } from '../../common/tls-credentials.js';
import { UserError } from '../../common/user-error.js';
import type { Assignment__Output } from '../../proto/generated/infobound/v1/Assignment.js';
import type { Membership__Output } from '../../proto/generated/infobound/v1/Membership.js';
import type { StepMetrics } from '../../proto/generated/infobound/v1/StepMetrics.js';
import { fetchState } from '../collective/fetch-state.js';
import { PeerServer } from '../collective/peer-server.js';
import { RingReducer } from '../collective/ring-reducer.js';
import { applyStep, computeStep, type PendingStep, type StepContext, type StepResult } from '../train/contrastive-step.js';
import { loadTask } from '../train/load-task.js';
import { createStepContext } from '../train/step-context.js';
import { restoreTrainingState, saveTrainingState } from '../train/training-state-file.js';
import type { TrainingTask } from '../train/training-task.js';
import { CoordinatorCallError, CoordinatorClient } from './coordinator-client.js';
import { RingBankTransport } from './ring-bank-transport.js';
import { openBankTransport } from '../bank/open-bank-transport.js';
import { BankUnavailableError, type StreamBankTransport } from '../bank/stream-bank-transport.js';
import { skippedInputs } from '../../common/run-lines.js';
import { stepFigures } from '../train/step-figures.js';
import type { InfoboundMetrics } from '../../common/metrics.js';

/** Version sent on join: members of a job must run the same build of the training step. */
export const WORKER_VERSION = 'infobound-0.1';

/** How a worker process runs. */
export interface WorkerProcessOptions {
  /** The worker's configuration; its training sections must equal the coordinator's. */
  config: Config;
  /** host:port of the coordinator. */
  coordinator: string;
  /** Stable identity (pod name, or host-pid). */
  workerId: string;
  /** The job's join token, or null. */
  token: string | null;
  /** Address the Peer server binds to. */
  peerHost: string;
  /** Port of the Peer server; 0 (the default) takes any free port. A fixed one suits network policies. */
  peerPort?: number;
  /** Host other workers dial to reach this one (the pod IP in Kubernetes). */
  advertiseHost: string;
  /** Where rank 0 writes checkpoints (the run directory). */
  checkpointPath: string;
  /**
   * How long to wait for an unreachable coordinator (not started yet, restarting) and for a new
   * generation after a failed step, ms. Default 60000.
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
  info?(message: string): void;
  warn?(message: string): void;
}

/** The sections of the config that every member must share for the ring to compute one update. */
const SHARED_SECTIONS = ['seed', 'train', 'bank', 'temperature', 'clicklog', 'images'] as const;

/** Statuses by which the coordinator says a step or a generation is over (DESIGN.md §5). */
const GENERATION_ENDED: readonly grpc.status[] = [grpc.status.ABORTED, grpc.status.FAILED_PRECONDITION];

/**
 * A worker: joins the coordinator, trains the steps it is assigned with gradients and keys exchanged
 * around the ring, reports each step and applies it only once the coordinator committed it. When the
 * membership changes mid-step (a peer died, a worker joined), the uncommitted step is dropped — no
 * parameter moved yet, so there is nothing to roll back — and the worker carries on in the new
 * generation, where the same step is planned again. Rank 0 writes checkpoints; a worker that joins a
 * job in progress fetches the committed state from a member first.
 */
export async function runWorker(o: WorkerProcessOptions): Promise<void> {
  const { config } = o;
  await initBackend(config.backend);
  const task = await loadTask(config, o.warn);
  const credentials = channelCredentials(config.tls);
  const peer = await PeerServer.start({ host: o.peerHost, port: o.peerPort ?? 0, credentials: serverCredentials(config.tls) }).catch((err: Error) => {
    throw new UserError(`worker ${o.workerId}: cannot serve Peer on ${o.peerHost}:${o.peerPort ?? 0} (--bind, --peer-port): ${err.message.replace(/^.*\[(.*)\]$/, '$1')}`);
  });
  const port = peer.address.slice(peer.address.lastIndexOf(':') + 1);
  const client = new CoordinatorClient(o.coordinator, { credentials });
  const ring = new RingReducer(peer, { channelCredentials: credentials });
  const ctx = createStepContext(config, task, new RingBankTransport(ring, config.bank.staleness));
  ctx.reducer = ring;
  /** The NATS bank, once the first membership names the job and run. */
  let nats: StreamBankTransport | undefined;
  /** The last step this worker applied (its state is the state after it), and the stream position after it. */
  let step = 0;
  let position = 0;
  let latest: Membership__Output | undefined;
  let wake: () => void = () => {};
  let stopHeartbeat = () => {};
  peer.setStateProvider(() => snapshot(task, ctx, config, step, position));
  const recoveryMs = o.recoveryTimeoutMs ?? 60_000;
  const joinRequest = { worker_id: o.workerId, peer_address: `${o.advertiseHost}:${port}`, token: o.token ?? '', version: WORKER_VERSION, epoch_size: task.order.size };
  try {
    /** Joins, retrying while the coordinator is unreachable (not started yet, or restarting) up to the recovery deadline. */
    const joinWhenReachable = async (): Promise<Membership__Output> => {
      const deadline = Date.now() + recoveryMs;
      for (;;) {
        try {
          return await client.join(joinRequest);
        } catch (err) {
          if (!(err instanceof CoordinatorCallError && err.code === grpc.status.UNAVAILABLE)) throw err;
          // A certificate the coordinator or this worker rejects will not get better by waiting.
          if (/certificate|handshake|ssl|tls/i.test(err.message)) throw err;
          if (Date.now() > deadline) throw new UserError(`worker ${o.workerId}: coordinator ${o.coordinator} unreachable for ${recoveryMs / 1000} s: ${err.message}`);
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    };
    let membership = await joinWhenReachable();
    /** Set when the heartbeat stream broke: the next recovery joins again instead of waiting for a push. */
    let lost = false;
    checkSameConfig(config, membership.config_json);
    latest = membership;
    if (config.nats.url !== null) {
      nats = await openBankTransport(config, task.model.dim, { job: membership.job, runId: membership.run_id, clientName: o.workerId });
      ctx.transport = nats;
    }
    const startHeartbeat = () => {
      stopHeartbeat = client.heartbeat(
        o.workerId,
        () => ({ generation: membership.generation, step }),
        (m) => {
          latest = m;
          if (m.generation !== membership.generation) {
            ring.abort(`membership changed to generation ${m.generation}`);
            nats?.abort(`membership changed to generation ${m.generation}`);
          }
          wake();
        },
        (err) => {
          // The coordinator is gone (perhaps restarting): stop waiting on peers and join again.
          o.warn?.(`infobound worker ${o.workerId}: heartbeat: ${err.message}`);
          lost = true;
          ring.abort('the coordinator is unreachable');
          nats?.abort('the coordinator is unreachable');
          wake();
        },
      );
    };
    startHeartbeat();
    /** The coordinator is gone (restarting): join again, within the recovery deadline. */
    const rejoin = async (): Promise<Membership__Output> => {
      stopHeartbeat();
      const m = await joinWhenReachable();
      latest = m;
      lost = false;
      startHeartbeat();
      return m;
    };
    /** What to do after a coordinator call failed: the next membership to adopt. */
    const recover = (err: unknown, why: string): Promise<Membership__Output> => {
      if (err instanceof CoordinatorCallError && err.code === grpc.status.UNAVAILABLE) return rejoin();
      if (!endsGeneration(err)) throw err;
      return newGeneration(membership.generation, why);
    };
    /**
     * Resolves with a generation newer than `after`, pushed by the heartbeat, or with a fresh membership
     * when the coordinator was lost meanwhile (bounded wait).
     */
    const newGeneration = (after: number, why: string): Promise<Membership__Output> =>
      new Promise((resolve, reject) => {
        const timeoutMs = recoveryMs;
        const check = () => {
          if (lost) {
            clearTimeout(timer);
            wake = () => {};
            rejoin().then(resolve, reject);
          } else if (latest !== undefined && latest.generation > after) {
            clearTimeout(timer);
            resolve(latest);
          }
        };
        const timer = setTimeout(() => reject(new UserError(`worker ${o.workerId}: ${why}, and no new generation formed within ${timeoutMs / 1000} s`)), timeoutMs);
        wake = check;
        check();
      });
    /** True until the bank replica has been rebuilt from the NATS stream once. */
    let replayBank = true;
    const { metrics } = o;
    metrics?.setTrueMi(task.trueMi);
    metrics?.skippedInputs(task.skipped);
    const adopt = async (m: Membership__Output) => {
      metrics?.membership(m.generation, m.world, membership !== m && m.generation !== membership.generation);
      membership = m;
      ctx.rank = m.rank;
      ctx.round = { generation: m.generation, world: m.world };
      ring.setTopology({ generation: m.generation, rank: m.rank, world: m.world, peers: m.members.map((x) => x.peer_address) });
      if (m.committed_step !== step) {
        ({ step, position } = await catchUp(o, m, task, ctx, step));
        replayBank = true;
      }
      if (nats !== undefined && replayBank) {
        // A joining or restarted worker takes its replica from the stream (DESIGN.md §4).
        const replayed = await nats.rebuild(ctx.bank, step);
        o.info?.(replayed ? `rebuilt the bank from the stream at step ${step}: ${ctx.bank.filled} keys` : `the stream no longer holds the bank of step ${step}: kept the restored one`);
        replayBank = false;
      }
      o.info?.(`generation ${m.generation}: rank ${m.rank} of ${m.world}, at step ${step}`);
    };
    await adopt(membership);

    /** The next step's assignment, as the last step's acknowledgement carried it. */
    let next: Assignment__Output | null = null;
    for (;;) {
      if (o.drain?.aborted) {
        o.info?.(`leaving the job after step ${step}`);
        stopHeartbeat();
        await client.leave(o.workerId, membership.generation, '');
        return;
      }
      if (latest.generation > membership.generation) await adopt(latest);
      let a: Assignment__Output;
      if (next !== null && next.generation === membership.generation) {
        a = next;
      } else {
        try {
          a = await client.nextStep(o.workerId, membership.generation);
        } catch (err) {
          await adopt(await recover(err, `generation ${membership.generation} ended`));
          continue;
        }
      }
      next = null;
      if (a.done) break;
      const split = a.splits[0]!;
      const t0 = performance.now();
      const bytesBefore = ring.bytesSent;
      const batch = task.batchAt(split.start, split.count);
      const dataMs = performance.now() - t0;
      const logged = a.step % config.train.log_every === 0 || a.step === config.train.steps;
      let pending: PendingStep;
      try {
        pending = await computeStep(task.model, batch, a.step, ctx, logged);
      } catch (err) {
        // NATS down past its timeout: stop, leaving the last checkpoint as it is.
        if (err instanceof BankUnavailableError) throw err;
        o.warn?.(`infobound worker ${o.workerId}: step ${a.step} failed: ${(err as Error).message}`);
        await adopt(await newGeneration(membership.generation, `step ${a.step} failed (${(err as Error).message})`));
        continue;
      }
      // Rank 0 checkpoints the state this step starts from (the last commit) and says so in its report.
      const every = config.train.checkpoint_every;
      const checkpoint = ctx.rank === 0 && every > 0 && step > 0 && step % every === 0;
      if (checkpoint) {
        await saveTrainingState(o.checkpointPath, step, position, task, ctx, config);
        metrics?.checkpointNow();
      }
      const figures = await stepMetrics(pending.result, ctx, task, a.step, split.start, dataMs, (split.count * 1000) / (performance.now() - t0));
      try {
        ({ next } = await client.reportStep({
          worker_id: o.workerId,
          generation: membership.generation,
          step: a.step,
          metrics: figures,
          examples: split.count,
          checkpoint_written: checkpoint,
          split_start: split.start,
        }));
      } catch (err) {
        pending.discard();
        await adopt(await recover(err, `step ${a.step} was discarded`));
        continue;
      }
      const r = applyStep(task.model, pending, ctx);
      step = a.step;
      metrics?.step(stepFigures(r, split.count, dataMs, figures.examples_per_s));
      metrics?.collective(ring.bytesSent - bytesBefore, r.allReduceMs);
      // The bank figures of the step's report (its step line), not computed a second time.
      if (figures.logged) {
        metrics?.bank({ fill: figures.bank_fill, lag: figures.bank_lag, meanAge: figures.key_age_steps, ageCounts: figures.key_age_counts });
        metrics?.skippedInputs(skippedInputs(task.skipped, ctx.transport.dropped));
      }
      // Splits of one step are contiguous in rank order and equal in size.
      position = split.start + (membership.world - ctx.rank) * split.count;
    }
    if (ctx.rank === 0) await saveTrainingState(o.checkpointPath, step, position, task, ctx, config);
    const skipped = skippedInputs(task.skipped, ctx.transport.dropped);
    const summary = ctx.rank === 0 && config.eval.enabled ? { eval: await task.evaluate(step, config.temperature.value), true_mi: task.trueMi, skipped_inputs: skipped } : { skipped_inputs: skipped };
    stopHeartbeat();
    await client.leave(o.workerId, membership.generation, JSON.stringify(summary));
  } finally {
    stopHeartbeat();
    await nats?.close();
    ring.close();
    await peer.close();
    client.close();
  }
}

function endsGeneration(err: unknown): boolean {
  return err instanceof CoordinatorCallError && GENERATION_ENDED.includes(err.code);
}

/** A step report's metrics, with the fields the worker's own Prometheus metrics read back typed as numbers. */
type ReportedMetrics = StepMetrics & { examples_per_s: number; bank_fill: number; bank_lag: number; key_age_steps: number; key_age_counts: number[]; logged: boolean };

/** The metrics of a step report: the fields of its `--json` step line. */
async function stepMetrics(r: StepResult, ctx: StepContext, task: TrainingTask<unknown>, step: number, start: number, dataMs: number, rate: number): Promise<ReportedMetrics> {
  // Digests hash the whole bank and parameters (megabytes): only logged steps, which become step lines, carry them.
  const logged = r.bounds !== undefined;
  return {
    loss: r.loss,
    bounds: r.bounds ?? { infonce: 0, nwj: 0, dv: 0, jsd: 0 },
    ceiling: r.ceiling,
    temperature: 1 / r.scale,
    accuracy: r.accuracy ?? 0,
    examples_per_s: rate,
    grad_norm: r.gradNorm,
    bank_fill: ctx.bank.filled / ctx.bank.capacity,
    bank_digest: logged ? ctx.bank.digest() : '',
    bank_lag: logged ? await ctx.transport.lag() : 0,
    key_age_steps: logged ? ctx.bank.meanKeyAge(step) : 0,
    key_age_counts: logged ? ctx.bank.keyAgeCounts(step) : [],
    data_ms: dataMs,
    compute_ms: r.computeMs,
    allreduce_ms: r.allReduceMs,
    bank_wait_ms: r.bankWaitMs,
    params_digest: logged ? digest(task.model.online.values) : '',
    logged,
    epoch: task.order.epochOf(start),
  };
}

/** The committed state as a checkpoint file's bytes, for a worker that joins (Peer.FetchState). */
async function snapshot(task: TrainingTask<unknown>, ctx: StepContext, config: Config, step: number, position: number): Promise<{ step: number; data: Buffer }> {
  const dir = mkdtempSync(join(tmpdir(), 'infobound-state-'));
  try {
    const path = join(dir, 'state.ibck');
    await saveTrainingState(path, step, position, task, ctx, config);
    return { step, data: readFileSync(path) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Brings this worker to the generation's committed step: back to the checkpoint when a restarted
 * coordinator resumed from it, or forward from a member's state (a joiner, or a worker that fell
 * behind), retrying while that member has not applied the step yet.
 */
async function catchUp(o: WorkerProcessOptions, m: Membership__Output, task: TrainingTask<unknown>, ctx: StepContext, step: number): Promise<{ step: number; position: number }> {
  const source = m.members[m.state_source_rank]!;
  // A resumed job (a restarted coordinator, perhaps with another worker count) starts from the last
  // checkpoint: a member ahead of it goes back to it, a fresh one (or the state source) loads it.
  const isSource = source.worker_id === o.workerId;
  if (m.committed_step < step || isSource || (step === 0 && existsSync(o.checkpointPath))) {
    const restored = await restoreTrainingState(o.checkpointPath, task, ctx);
    if (restored.step === m.committed_step) {
      o.info?.(`loaded the checkpoint of step ${restored.step}`);
      return restored;
    }
    // An older checkpoint: a member has the committed state (everything is overwritten below).
    if (isSource || m.committed_step < step) {
      throw new UserError(`worker ${o.workerId}: ${o.checkpointPath} holds step ${restored.step}, but the job resumes at step ${m.committed_step}`);
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'infobound-state-'));
  try {
    for (let attempt = 0; ; attempt++) {
      const state = await fetchState(source.peer_address, { workerId: o.workerId, generation: m.generation, credentials: channelCredentials(o.config.tls) });
      if (state.step === m.committed_step) {
        const path = join(dir, 'state.ibck');
        writeFileSync(path, state.data);
        const restored = await restoreTrainingState(path, task, ctx);
        o.info?.(`fetched the state of step ${state.step} from rank ${m.state_source_rank}`);
        return restored;
      }
      // The source commits a step before it applies it: give it a moment (bounded).
      if (attempt >= 100) throw new UserError(`worker ${o.workerId}: rank ${m.state_source_rank} is at step ${state.step}, not the committed step ${m.committed_step}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function checkSameConfig(mine: Config, coordinatorJson: string): void {
  if (coordinatorJson === '') return;
  const theirs = JSON.parse(coordinatorJson) as Record<string, unknown>;
  // Every member must carry the bank the same way: a replica fed over NATS cannot meet one fed around the ring.
  const theirNats = (theirs.nats as { url?: string | null } | undefined)?.url ?? null;
  if ((mine.nats.url === null) !== (theirNats === null)) {
    throw new UserError(`this worker's bank transport differs from the coordinator's: nats.url is ${mine.nats.url ?? 'null'} here, ${theirNats ?? 'null'} there`);
  }
  for (const section of SHARED_SECTIONS) {
    const a = JSON.stringify(mine[section]);
    const b = JSON.stringify(theirs[section]);
    if (a !== b) throw new UserError(`this worker's config differs from the coordinator's in "${section}": ${a} vs ${b}`);
  }
}

function digest(values: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)).digest('hex').slice(0, 16);
}
