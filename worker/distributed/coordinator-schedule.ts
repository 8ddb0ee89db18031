import type * as grpc from '@grpc/grpc-js';
import type { InfoboundMetrics } from '../../common/metrics.js';
import type { Assignment__Output } from '../../proto/generated/infobound/v1/Assignment.js';
import type { Membership__Output } from '../../proto/generated/infobound/v1/Membership.js';
import { BankUnavailableError, type StreamBankTransport } from '../bank/stream-bank-transport.js';
import { KeyShard } from '../bank/key-shard.js';
import { UserError } from '../../common/user-error.js';
import type { RingReducer } from '../collective/ring-reducer.js';
import { FetchStateError } from '../collective/fetch-state.js';
import { stepReport, type FinalFigures, type StepAssignment, type StepOutcome, type StepSchedule } from '../train/step-schedule.js';
import type { TrainingRun } from '../train/training-run.js';
import { EvaluationGroupError, type EvaluationGroup } from '../eval/evaluation-group.js';
import { reshardBank, type ReshardOutcome } from '../train/bank-reshard.js';
import { catchUp } from './catch-up.js';
import type { CoordinatorClient } from './coordinator-client.js';
import type { MembershipSession } from './membership-session.js';

/** How long rank 0 waits at the end for the other members to leave first. */
const LAST_TO_LEAVE_WAIT_MS = 10_000;

/** What a {@link CoordinatorSchedule} works with besides the session. */
export interface CoordinatorScheduleOptions {
  workerId: string;
  client: CoordinatorClient;
  ring: RingReducer;
  /** The NATS bank, when the job carries its keys over NATS. */
  nats?: StreamBankTransport;
  credentials: grpc.ChannelCredentials;
  /** Aborted to take the worker out of the job after the step in flight (SIGTERM on a scale-down). */
  drain?: AbortSignal;
  metrics?: InfoboundMetrics;
  info?(message: string): void;
  warn?(message: string): void;
}

/**
 * A cluster worker's schedule: assignments from the coordinator, reports that resolve at the commit,
 * and the generations in between. Adopting a generation sets the rank and the ring, and moves the run
 * to the generation's committed step first (checkpoint or a peer's state) when it stands elsewhere.
 */
export class CoordinatorSchedule implements StepSchedule {
  /** The generation this member computes in. */
  private membership: Membership__Output;
  /** The next step's assignment, as the last step's acknowledgement carried it. */
  private next_: Assignment__Output | null = null;
  /** True until the bank replica has been rebuilt from the NATS stream once. */
  private replayBank = true;
  private adopted = false;

  constructor(
    private readonly run: TrainingRun,
    private readonly session: MembershipSession,
    private readonly o: CoordinatorScheduleOptions,
  ) {
    this.membership = session.latest;
  }

  get rank(): number {
    return this.run.ctx.rank;
  }

  /** The generation this member computes in now. */
  get generation(): number {
    return this.membership.generation;
  }

  async next(): Promise<StepAssignment | 'done' | 'drained'> {
    if (!this.adopted) await this.adopt(this.membership);
    for (;;) {
      if (this.o.drain?.aborted) {
        this.o.info?.(`leaving the job after step ${this.run.step}`);
        await this.session.leave(this.membership.generation, '');
        return 'drained';
      }
      if (this.session.latest.generation > this.membership.generation) await this.adopt(this.session.latest);
      let a: Assignment__Output;
      if (this.next_ !== null && this.next_.generation === this.membership.generation) {
        a = this.next_;
      } else {
        try {
          a = await this.o.client.nextStep(this.o.workerId, this.membership.generation);
        } catch (err) {
          await this.adopt(await this.session.recover(err, this.membership.generation, `generation ${this.membership.generation} ended`));
          continue;
        }
      }
      this.next_ = null;
      if (a.done) return 'done';
      const split = a.splits[0]!;
      // Splits of one step are contiguous in rank order and equal in size.
      return { step: a.step, start: split.start, count: split.count, positionAfter: split.start + (this.membership.world - this.rank) * split.count };
    }
  }

  async report(a: StepAssignment, outcome: StepOutcome): Promise<'committed' | 'discarded'> {
    try {
      ({ next: this.next_ } = await this.o.client.reportStep(stepReport(this.o.workerId, this.membership.generation, a, outcome)));
      // What this worker's Peer server refused (intruders, stale peers), beside the coordinator's refusals.
      this.o.metrics?.refusedTotals(Object.fromEntries(Object.entries(this.o.ring.refused).map(([reason, n]) => [`peer_${reason}`, n])));
      return 'committed';
    } catch (err) {
      await this.adopt(await this.session.recover(err, this.membership.generation, `step ${a.step} was discarded`));
      return 'discarded';
    }
  }

  async recover(a: StepAssignment, err: unknown): Promise<void> {
    // NATS down past its timeout: stop, leaving the last checkpoint as it is.
    if (err instanceof BankUnavailableError) throw err;
    const why = `step ${a.step} failed (${(err as Error).message})`;
    this.o.warn?.(`infobound worker ${this.o.workerId}: ${why}`);
    await this.adopt(await this.session.newerThan(this.membership.generation, why));
  }

  /** The members of the generation the last step committed in, summing around the ring as a step after it. */
  evaluationGroup(): EvaluationGroup {
    const { ring } = this.o;
    const step = this.run.step + 1;
    return {
      rank: this.rank,
      world: this.membership.world,
      sum: (values) =>
        ring.allReduceSum(values, step).catch((err: Error) => {
          throw new EvaluationGroupError(err.message);
        }),
    };
  }

  async finish(final: FinalFigures): Promise<void> {
    // Rank 0 carries the job's figures, and the coordinator ends once it has them: it leaves last, so
    // that the coordinator is still there for the others' Leave.
    if (this.rank === 0 && this.membership.world > 1) await this.session.othersLeft(LAST_TO_LEAVE_WAIT_MS);
    await this.session.leave(this.membership.generation, JSON.stringify(final));
  }

  async fail(message: string): Promise<void> {
    await this.session.leave(this.membership.generation, JSON.stringify({ error: message }));
  }

  /** Takes on generation `m`: rank, ring, bank round, and the run at its committed step. */
  private async adopt(m: Membership__Output): Promise<void> {
    const { run, o } = this;
    const { ctx } = run;
    o.metrics?.membership(m.generation, m.world, this.adopted && m.generation !== this.membership.generation);
    this.membership = m;
    this.adopted = true;
    ctx.rank = m.rank;
    ctx.round = { generation: m.generation, world: m.world };
    o.ring.setTopology({
      generation: m.generation,
      rank: m.rank,
      world: m.world,
      peers: m.members.map((x) => x.peer_address),
      credential: m.peer_credential,
    });
    const shard = ctx.bank;
    if (o.nats !== undefined && shard instanceof KeyShard && (shard.place.rank !== m.rank || shard.place.world !== m.world)) {
      // Over NATS a partitioned bank is dealt anew for the new place from the stream (below); what the old shard held is no longer this member's.
      ctx.bank = new KeyShard(shard.bankSize, shard.dim, { rank: m.rank, world: m.world });
      run.shardMissing = run.step > 0;
    }
    if (m.committed_step !== run.step) {
      try {
        await catchUp(run, m, { workerId: o.workerId, credentials: o.credentials, ...(o.info ? { info: o.info } : {}) });
      } catch (err) {
        if (!(err instanceof FetchStateError)) throw err;
        // The state source went away (the generation is ending): the next one names another.
        const why = `could not take the state of step ${m.committed_step} (${(err as Error).message})`;
        o.warn?.(`infobound worker ${o.workerId}: ${why}; waiting for the next generation`);
        return this.adopt(await this.session.newerThan(m.generation, why));
      }
      this.replayBank = true;
    }
    if (o.nats === undefined && ctx.bank instanceof KeyShard) {
      // Without a stream, the members deal the bank anew between them at every generation (a join, a
      // restart, a resume on another worker count); a member that died took its keys with it.
      const bank = ctx.bank;
      let outcome: ReshardOutcome;
      try {
        outcome = await reshardBank(bank, { rank: m.rank, world: m.world }, o.ring, run.step);
      } catch (err) {
        const why = `could not deal the bank's shards at step ${run.step} (${(err as Error).message})`;
        o.warn?.(`infobound worker ${o.workerId}: ${why}; waiting for the next generation`);
        return this.adopt(await this.session.newerThan(m.generation, why));
      }
      if (outcome.kind === 'incomplete') {
        throw new UserError(
          `worker ${o.workerId}: bank.mode partitioned: at step ${run.step} the members hold ${outcome.held} of the bank's ${outcome.expected} keys (a member left with its shard), and rebuilding the rest needs the bank in a stream (nats.url); restart the job from its checkpoint`,
        );
      }
      ctx.bank = outcome.shard;
      run.shardMissing = false;
      if (run.step > 0)
        o.info?.(`dealt the bank anew at step ${run.step}: rank ${m.rank} of ${m.world} holds ${outcome.shard.filled} of ${outcome.shard.combinedFilled} keys`);
    }
    if (o.nats !== undefined && (this.replayBank || run.shardMissing)) {
      // A joining or restarted worker takes its replica, or its shard, from the stream (docs/architecture.md §4).
      const replayed = await o.nats.rebuild(ctx.bank, run.step);
      if (replayed) run.shardMissing = false;
      o.info?.(
        replayed
          ? `rebuilt the bank${ctx.bank instanceof KeyShard ? ` shard of rank ${m.rank} of ${m.world}` : ''} from the stream at step ${run.step}: ${ctx.bank.filled} keys`
          : `the stream no longer holds the bank of step ${run.step}: kept the restored one`,
      );
      this.replayBank = false;
    }
    if (run.shardMissing) {
      throw new UserError(
        `worker ${o.workerId}: bank.mode partitioned: at step ${run.step} this worker's bank shard (rank ${m.rank} of ${m.world}) must be rebuilt, and the stream no longer holds its keys; restart the job from its checkpoint`,
      );
    }
    o.info?.(`generation ${m.generation}: rank ${m.rank} of ${m.world}, at step ${run.step}`);
  }
}
