import { decodeCheckpoint, encodeCheckpoint, writeCheckpoint } from '../../common/checkpoint-file.js';
import type { Config } from '../../common/config/mod.js';
import type { StepContext } from './contrastive-step.js';
import { applyTrainingState, restoreTrainingState, trainingStateContents } from './training-state-file.js';
import { KeyBank } from '../bank/key-bank.js';
import { UserError } from '../../common/user-error.js';
import { wholeBank } from './whole-bank.js';
import type { TrainingTask } from './training-task.js';

/** The member that writes checkpoints (rank 0), where a partitioned bank's shards are gathered. */
const WRITER_RANK = 0;

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

  /**
   * True while this member's bank shard is not the job's: a peer's state carries no shard (each
   * member holds only its own), so one taken from a peer must be rebuilt from the bank's stream.
   */
  shardMissing = false;

  /**
   * Writes the state to the run's checkpoint (atomically) when `write`. With a partitioned bank
   * every member calls it at the same point, as collective step `step`: the shards are gathered
   * into the whole bank, which the checkpoint holds as a replicated run's does.
   */
  async checkpoint(write: boolean, step: number): Promise<void> {
    await this.write(write, await wholeBank(this.ctx, step, WRITER_RANK));
  }

  /**
   * The last checkpoint of a run, as {@link checkpoint}. With a partitioned bank a barrier follows the
   * gather: the members leave the job once it is done, and a member that left while the writer still
   * waited for its acknowledgements would end the writer's gather with the generation.
   */
  async finalCheckpoint(write: boolean, step: number): Promise<void> {
    let bank: KeyBank | null;
    try {
      bank = await wholeBank(this.ctx, step, WRITER_RANK);
    } catch (err) {
      throw new UserError(
        `the final checkpoint of step ${this.step} could not gather the bank's shards (${(err as Error).message}); the last checkpoint written is intact`,
      );
    }
    // Past the barrier every member's part of the gather is over; a peer that leaves at once may fail the barrier itself, which is then moot.
    if (!(this.ctx.bank instanceof KeyBank)) await this.ctx.reducer.allReduceSum(new Float32Array(1), step).catch(() => {});
    await this.write(write, bank);
  }

  /** Writes the state with the whole bank `bank` to the run's checkpoint (atomically), on the writer. */
  private async write(write: boolean, bank: KeyBank | null): Promise<void> {
    if (write && bank !== null)
      await writeCheckpoint(this.checkpointPath, trainingStateContents(this.step, this.position, this.task, this.ctx, this.config, bank));
  }

  /** The state as a checkpoint's bytes, in memory (Peer.FetchState); a partitioned member's carries an empty bank. */
  snapshot(): { step: number; data: Buffer } {
    const { bank } = this.ctx;
    const whole = bank instanceof KeyBank ? bank : new KeyBank(bank.bankSize, bank.dim);
    return { step: this.step, data: encodeCheckpoint(trainingStateContents(this.step, this.position, this.task, this.ctx, this.config, whole)) };
  }

  /** Loads a checkpoint file (the run's own by default) and stands where it stood. */
  async restoreFile(path = this.checkpointPath): Promise<RunPosition> {
    this.stand(await restoreTrainingState(path, this.task, this.ctx));
    this.shardMissing = false;
    return this;
  }

  /** Loads a state a peer sent; `where` names it in errors. */
  restoreBytes(data: Buffer, where: string): RunPosition {
    this.stand(applyTrainingState(decodeCheckpoint(data, where), where, this.task, this.ctx));
    this.shardMissing = !(this.ctx.bank instanceof KeyBank);
    return this;
  }

  private stand(p: RunPosition): void {
    this.step = p.step;
    this.position = p.position;
  }
}
