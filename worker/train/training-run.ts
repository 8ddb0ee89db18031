import { decodeCheckpoint, encodeCheckpoint } from '../../common/checkpoint-file.js';
import type { Config } from '../../common/config/mod.js';
import type { StepContext } from './contrastive-step.js';
import { applyTrainingState, restoreTrainingState, saveTrainingState, trainingStateContents } from './training-state-file.js';
import type { TrainingTask } from './training-task.js';

/** Where a run stands: the last step applied (the state is the state after it) and the stream position after it. */
export interface RunPosition {
  step: number;
  position: number;
}

/**
 * A member's training state and where it stands: what the training loop steps, what a schedule moves
 * to a generation's committed step (from a checkpoint or a peer's state), and what a peer is sent.
 */
export class TrainingRun implements RunPosition {
  step = 0;
  position = 0;

  constructor(
    readonly config: Config,
    readonly task: TrainingTask<unknown>,
    readonly ctx: StepContext,
    /** The run directory's checkpoint, which rank 0 writes and a resumed job restores. */
    readonly checkpointPath: string,
  ) {}

  /** Writes the state to the run's checkpoint (atomically). */
  save(): Promise<void> {
    return saveTrainingState(this.checkpointPath, this.step, this.position, this.task, this.ctx, this.config);
  }

  /** The state as a checkpoint's bytes, in memory (Peer.FetchState). */
  snapshot(): { step: number; data: Buffer } {
    return { step: this.step, data: encodeCheckpoint(trainingStateContents(this.step, this.position, this.task, this.ctx, this.config)) };
  }

  /** Loads a checkpoint file (the run's own by default) and stands where it stood. */
  async restoreFile(path = this.checkpointPath): Promise<RunPosition> {
    this.stand(await restoreTrainingState(path, this.task, this.ctx));
    return this;
  }

  /** Loads a state a peer sent; `where` names it in errors. */
  restoreBytes(data: Buffer, where: string): RunPosition {
    this.stand(applyTrainingState(decodeCheckpoint(data, where), where, this.task, this.ctx));
    return this;
  }

  private stand(p: RunPosition): void {
    this.step = p.step;
    this.position = p.position;
  }
}
