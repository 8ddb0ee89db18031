import { existsSync } from 'node:fs';
import type * as grpc from '@grpc/grpc-js';
import { Backoff } from '../../common/backoff.js';
import { UserError } from '../../common/user-error.js';
import type { Membership__Output } from '../../proto/generated/infobound/v1/Membership.js';
import { fetchState } from '../collective/fetch-state.js';
import type { RunPosition, TrainingRun } from '../train/training-run.js';

/** How long a catching-up member waits for the state source to apply the committed step, ms. */
const SOURCE_WAIT_MS = 5000;

/** Who catches up, and how it reaches its peers. */
export interface CatchUpOptions {
  workerId: string;
  credentials: grpc.ChannelCredentials;
  info?(message: string): void;
}

/**
 * Brings `run` to the generation's committed step: back to the checkpoint when a restarted
 * coordinator resumed from it, or forward from a member's state (a joiner, or a worker that fell
 * behind), retrying while that member has not applied the step yet. The state travels in memory.
 */
export async function catchUp(run: TrainingRun, m: Membership__Output, o: CatchUpOptions): Promise<RunPosition> {
  const source = m.members[m.state_source_rank]!;
  // A resumed job (a restarted coordinator, perhaps with another worker count) starts from the last
  // checkpoint: a member ahead of it goes back to it, a fresh one (or the state source) loads it.
  const isSource = source.worker_id === o.workerId;
  const behindCheckpoint = m.committed_step < run.step;
  if (behindCheckpoint || isSource || (run.step === 0 && existsSync(run.checkpointPath))) {
    const restored = await run.restoreFile();
    if (restored.step === m.committed_step) {
      o.info?.(`loaded the checkpoint of step ${restored.step}`);
      return restored;
    }
    // An older checkpoint: a member has the committed state (everything is overwritten below).
    if (isSource || behindCheckpoint) {
      throw new UserError(`worker ${o.workerId}: ${run.checkpointPath} holds step ${restored.step}, but the job resumes at step ${m.committed_step}`);
    }
  }
  // The source commits a step before it applies it: a short, bounded wait for it to catch up.
  const deadline = Date.now() + SOURCE_WAIT_MS;
  const backoff = new Backoff({ initialMs: 20, maxMs: 500 });
  for (;;) {
    const state = await fetchState(source.peer_address, {
      workerId: o.workerId,
      generation: m.generation,
      credential: m.peer_credential,
      credentials: o.credentials,
    });
    if (state.step === m.committed_step) {
      const restored = run.restoreBytes(state.data, `the state of step ${state.step} from rank ${m.state_source_rank}`);
      o.info?.(`fetched the state of step ${state.step} from rank ${m.state_source_rank}`);
      return restored;
    }
    if (Date.now() > deadline) {
      throw new UserError(
        `worker ${o.workerId}: rank ${m.state_source_rank} is at step ${state.step}, not the committed step ${m.committed_step}, after ${SOURCE_WAIT_MS / 1000} s`,
      );
    }
    await backoff.wait();
  }
}
