import { Backoff } from '../../common/backoff.js';
import { UserError } from '../../common/user-error.js';
import type { JoinRequest } from '../../proto/generated/infobound/v1/JoinRequest.js';
import type { Membership__Output } from '../../proto/generated/infobound/v1/Membership.js';
import { CoordinatorBusyError, CoordinatorLostError, GenerationEndedError, type CoordinatorClient } from './coordinator-client.js';

/** Options of a {@link MembershipSession}. */
export interface MembershipSessionOptions {
  /** What Join sends. */
  join: JoinRequest;
  /**
   * How long to wait for an unreachable coordinator (not started yet, restarting) and for a new
   * generation after a failed step, ms. @default 60000
   */
  recoveryMs?: number;
  /** Where this member stands, for its heartbeat pings; generation null until it adopted one (the joined one counts). */
  position(): { generation: number | null; step: number };
  /** The generation this member computes in is over (a new one was pushed, or the coordinator is lost): abort what waits on peers. */
  interrupted(why: string): void;
  warn?(message: string): void;
}

/**
 * A worker's membership of a job: Join (retried with backoff while the coordinator is unreachable),
 * the heartbeat stream that keeps it a member and hears new generations, and the way back after a
 * failure: wait for the generation that replaces the current one, or join again when the coordinator
 * was lost.
 */
export class MembershipSession {
  /** The newest membership heard (by Join or a heartbeat push). */
  latest: Membership__Output;
  private readonly recoveryMs: number;
  /** Set when the heartbeat stream broke: the next recovery joins again instead of waiting for a push. */
  private lost = false;
  private wake: () => void = () => {};
  private stopHeartbeat: () => void = () => {};
  private readonly workerId: string;

  private constructor(
    private readonly client: CoordinatorClient,
    private readonly o: MembershipSessionOptions,
    first: Membership__Output,
  ) {
    this.latest = first;
    this.recoveryMs = o.recoveryMs ?? 60_000;
    this.workerId = o.join.worker_id ?? '';
  }

  /** Joins the job (waiting for an unreachable coordinator) and starts the heartbeat. */
  static async open(client: CoordinatorClient, o: MembershipSessionOptions): Promise<MembershipSession> {
    const session = new MembershipSession(client, o, await joinWhenReachable(client, o));
    session.startHeartbeat();
    return session;
  }

  /**
   * The membership to adopt after a failed coordinator call: a fresh one when the coordinator was lost,
   * the next generation when the call's generation ended; any other failure ends the run.
   */
  recover(err: unknown, after: number, why: string): Promise<Membership__Output> {
    if (err instanceof CoordinatorLostError) return this.rejoin();
    if (err instanceof GenerationEndedError) return this.newerThan(after, why);
    throw err;
  }

  /**
   * Resolves with a generation newer than `after` pushed by the heartbeat, or with a fresh membership
   * when the coordinator was lost meanwhile; a bounded wait.
   */
  newerThan(after: number, why: string): Promise<Membership__Output> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.wake = () => {};
        reject(new UserError(`worker ${this.workerId}: ${why}, and no new generation formed within ${this.recoveryMs / 1000} s`));
      }, this.recoveryMs);
      const check = () => {
        if (this.lost) {
          clearTimeout(timer);
          this.wake = () => {};
          this.rejoin().then(resolve, reject);
        } else if (this.latest.generation > after) {
          clearTimeout(timer);
          this.wake = () => {};
          resolve(this.latest);
        }
      };
      this.wake = check;
      check();
    });
  }

  /** Resolves once the pushed membership holds this member alone (the others have left), or after `timeoutMs` at the latest. */
  othersLeft(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const settle = () => {
        clearTimeout(timer);
        this.wake = () => {};
        resolve();
      };
      const timer = setTimeout(settle, timeoutMs);
      const check = () => {
        if (this.lost || this.latest.members.length <= 1) settle();
      };
      this.wake = check;
      check();
    });
  }

  /** Leaves the job (the heartbeat stops first), with the member's final figures as JSON, or ''. */
  async leave(generation: number, summaryJson: string): Promise<void> {
    this.stopHeartbeat();
    await this.client.leave(this.workerId, generation, summaryJson);
  }

  close(): void {
    this.stopHeartbeat();
  }

  /** The coordinator is gone (restarting): join again, within the recovery deadline. */
  private async rejoin(): Promise<Membership__Output> {
    this.stopHeartbeat();
    this.latest = await joinWhenReachable(this.client, this.o);
    this.lost = false;
    this.startHeartbeat();
    return this.latest;
  }

  /** The member's position, the generation it joined standing in until it adopted one. */
  private position(): { generation: number; step: number } {
    const p = this.o.position();
    return { generation: p.generation ?? this.latest.generation, step: p.step };
  }

  private startHeartbeat(): void {
    this.stopHeartbeat = this.client.heartbeat(
      this.workerId,
      () => this.position(),
      (m) => {
        const computingIn = this.position().generation;
        this.latest = m;
        if (m.generation !== computingIn) this.o.interrupted(`membership changed to generation ${m.generation}`);
        this.wake();
      },
      (err) => {
        // The coordinator is gone (perhaps restarting): stop waiting on peers and join again.
        this.o.warn?.(`infobound worker ${this.workerId}: heartbeat: ${err.message}`);
        this.lost = true;
        this.o.interrupted('the coordinator is unreachable');
        this.wake();
      },
    );
  }
}

/** Joins, retrying with backoff while the coordinator is unreachable (not started yet, or restarting) or busy (its Join rate limit), up to the recovery deadline. */
async function joinWhenReachable(client: CoordinatorClient, o: MembershipSessionOptions): Promise<Membership__Output> {
  const recoveryMs = o.recoveryMs ?? 60_000;
  const deadline = Date.now() + recoveryMs;
  const backoff = new Backoff({ initialMs: 100, maxMs: 1000 });
  for (;;) {
    try {
      return await client.join(o.join);
    } catch (err) {
      if (!(err instanceof CoordinatorLostError || err instanceof CoordinatorBusyError)) throw err;
      // A certificate the coordinator or this worker rejects will not get better by waiting.
      if (/certificate|handshake|ssl|tls/i.test(err.message)) throw err;
      if (Date.now() > deadline)
        throw new UserError(`worker ${o.join.worker_id ?? ''}: coordinator ${client.address} unreachable for ${recoveryMs / 1000} s: ${err.message}`);
      await backoff.wait();
    }
  }
}
