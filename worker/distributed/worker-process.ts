import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../common/backend.js';
import type { Config } from '../../common/config.js';
import { UserError } from '../../common/user-error.js';
import type { Membership__Output } from '../../proto/generated/infobound/v1/Membership.js';
import type { StepMetrics } from '../../proto/generated/infobound/v1/StepMetrics.js';
import { fetchState } from '../collective/fetch-state.js';
import { PeerServer } from '../collective/peer-server.js';
import { RingReducer } from '../collective/ring-reducer.js';
import { contrastiveStep } from '../train/contrastive-step.js';
import { loadTask } from '../train/load-task.js';
import { createStepContext } from '../train/step-context.js';
import { restoreTrainingState, saveTrainingState } from '../train/training-state-file.js';
import { CoordinatorClient } from './coordinator-client.js';
import { RingBankTransport } from './ring-bank-transport.js';

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
  /** Host other workers dial to reach this one (the pod IP in Kubernetes). */
  advertiseHost: string;
  /** Where rank 0 writes checkpoints (the run directory). */
  checkpointPath: string;
  info?(message: string): void;
  warn?(message: string): void;
}

/** The sections of the config that every member must share for the ring to compute one update. */
const SHARED_SECTIONS = ['seed', 'train', 'bank', 'temperature', 'clicklog', 'images'] as const;

/**
 * A worker: joins the coordinator, trains the steps it is assigned with gradients reduced over the
 * ring and keys exchanged over the ring, reports each step and waits for its commit, writes the
 * checkpoint when it is rank 0, and leaves with its evaluation at the end.
 */
export async function runWorker(o: WorkerProcessOptions): Promise<void> {
  const { config } = o;
  await initBackend(config.backend);
  const task = await loadTask(config, o.warn);
  const peer = await PeerServer.start({ host: o.peerHost, port: 0 });
  const port = peer.address.slice(peer.address.lastIndexOf(':') + 1);
  const client = new CoordinatorClient(o.coordinator);
  const ring = new RingReducer(peer);
  let membership: Membership__Output | undefined;
  let step = 0;
  let changed: Membership__Output | undefined;
  let stopHeartbeat = () => {};
  try {
    membership = await client.join({
      worker_id: o.workerId,
      peer_address: `${o.advertiseHost}:${port}`,
      token: o.token ?? '',
      version: WORKER_VERSION,
      epoch_size: task.order.size,
    });
    checkSameConfig(config, membership.config_json);
    o.info?.(`joined generation ${membership.generation} as rank ${membership.rank} of ${membership.world}`);
    const ctx = createStepContext(config, task);
    const bank = new RingBankTransport(ring, ctx.bank);
    ctx.reducer = ring;
    ctx.transport = bank;
    const topology = (m: Membership__Output) => {
      ctx.rank = m.rank;
      ring.setTopology({ generation: m.generation, rank: m.rank, world: m.world, peers: m.members.map((x) => x.peer_address) });
    };
    topology(membership);
    step = membership.committed_step;
    let position = 0;
    if (step > 0) await catchUp(o, membership, task, ctx);
    peer.setStateProvider(async () => {
      const dir = mkdtempSync(join(tmpdir(), 'infobound-state-'));
      try {
        const path = join(dir, 'state.ibck');
        await saveTrainingState(path, step, position, task, ctx, config);
        return { step, data: readFileSync(path) };
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
    stopHeartbeat = client.heartbeat(
      o.workerId,
      () => ({ generation: membership!.generation, step }),
      (m) => {
        if (m.generation !== membership!.generation) {
          changed = m;
          ring.abort(`membership changed to generation ${m.generation}`);
        }
      },
      (err) => o.warn?.(`infobound: heartbeat: ${err.message}`),
    );
    const membershipChanged = () =>
      new UserError(`worker ${o.workerId}: the job's membership changed at step ${step + 1} (generation ${changed!.generation}); this worker stops`);
    for (;;) {
      let a;
      try {
        a = await client.nextStep(o.workerId, membership.generation);
      } catch (err) {
        throw changed !== undefined ? membershipChanged() : err;
      }
      if (a.done) break;
      if (changed !== undefined) throw membershipChanged();
      const split = a.splits[0]!;
      const t0 = performance.now();
      const batch = task.batchAt(split.start, split.count);
      const dataMs = performance.now() - t0;
      const logged = a.step % config.train.log_every === 0 || a.step === 1 || a.step === config.train.steps;
      const r = await contrastiveStep(task.model, batch, a.step, ctx, logged);
      const rate = (split.count * 1000) / (performance.now() - t0);
      position = split.start + split.count;
      const checkpoint = ctx.rank === 0 && (a.step === config.train.steps || (config.train.checkpoint_every > 0 && a.step % config.train.checkpoint_every === 0));
      // Rank 0's split starts the step's global batch: the committed cursor is world·batch further.
      if (checkpoint) await saveTrainingState(o.checkpointPath, a.step, split.start + membership.world * split.count, task, ctx, config);
      const metrics: StepMetrics = {
        loss: r.loss,
        bounds: r.bounds ?? { infonce: 0, nwj: 0, dv: 0, jsd: 0 },
        ceiling: r.ceiling,
        temperature: 1 / r.scale,
        accuracy: r.accuracy ?? 0,
        examples_per_s: rate,
        grad_norm: r.gradNorm,
        bank_fill: ctx.bank.filled / ctx.bank.capacity,
        bank_digest: ctx.bank.digest(),
        key_age_steps: ctx.bank.meanKeyAge(a.step),
        data_ms: dataMs,
        compute_ms: r.computeMs,
        allreduce_ms: r.allReduceMs,
        bank_wait_ms: r.bankWaitMs,
        params_digest: digest(task.model.online.values),
        logged: r.bounds !== undefined,
        epoch: task.order.epochOf(split.start),
      };
      step = a.step;
      await client.reportStep({ worker_id: o.workerId, generation: membership.generation, step: a.step, metrics, examples: split.count, checkpoint_written: checkpoint });
    }
    const summary = ctx.rank === 0 && config.eval.enabled ? { eval: await task.evaluate(step, config.temperature.value), true_mi: task.trueMi, skipped_inputs: task.skipped } : { skipped_inputs: task.skipped };
    stopHeartbeat();
    await client.leave(o.workerId, membership.generation, JSON.stringify(summary));
  } finally {
    stopHeartbeat();
    ring.close();
    await peer.close();
    client.close();
  }
}

/** Brings a worker that joins a job in progress to the last committed state: from the shared checkpoint or a member. */
async function catchUp(o: WorkerProcessOptions, m: Membership__Output, task: Awaited<ReturnType<typeof loadTask>>, ctx: ReturnType<typeof createStepContext>): Promise<void> {
  const source = m.members[m.state_source_rank]!;
  const dir = mkdtempSync(join(tmpdir(), 'infobound-state-'));
  try {
    const state = await fetchState(source.peer_address, { workerId: o.workerId, generation: m.generation });
    const path = join(dir, 'state.ibck');
    writeFileSync(path, state.data);
    await restoreTrainingState(path, task, ctx);
    o.info?.(`fetched the state of step ${state.step} from rank ${m.state_source_rank}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function checkSameConfig(mine: Config, coordinatorJson: string): void {
  if (coordinatorJson === '') return;
  const theirs = JSON.parse(coordinatorJson) as Record<string, unknown>;
  for (const section of SHARED_SECTIONS) {
    const a = JSON.stringify(mine[section]);
    const b = JSON.stringify(theirs[section]);
    if (a !== b) throw new UserError(`this worker's config differs from the coordinator's in "${section}": ${a} vs ${b}`);
  }
}

function digest(values: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)).digest('hex').slice(0, 16);
}
