import type { BankMessage } from './key-bank.js';

/** The membership a step is computed in. */
export interface ExchangeRound {
  generation: number;
  /** Producers in the generation: ranks 0..world−1. */
  world: number;
}

/** A committed step's keys from one producer that are not in the replica yet (the staleness window). */
export interface PendingKeys extends BankMessage {
  /** The generation that committed the step, and its world size. */
  generation: number;
  world: number;
}

/**
 * How a worker's keys reach every replica. The training step hands over its keys of a step and gets
 * back the keys to add to its replica once the step is committed, in (step, producer) order; whether
 * they travel in-process, around the worker ring or over NATS is the transport's business.
 */
export interface BankTransport {
  /** Publishes this worker's keys of `msg.step`; resolves with every producer's keys due at that step. */
  exchange(msg: BankMessage, round: ExchangeRound): Promise<BankMessage[]>;
  /** Position in the bank's stream of the last message read (0 for a transport without a stream); checkpoints record it. */
  readonly position: number;
  /** Messages stored in the stream but not read yet (consumer lag). */
  lag(): Promise<number>;
  /** Messages dropped instead of applied, by reason. */
  readonly dropped: Readonly<Record<string, number>>;
  /**
   * The keys of committed steps up to `committedStep` still due to join the replica (the last
   * `bank.staleness` steps), in (step, producer) order: a checkpoint holds them so that a resumed run
   * adds them when a continuous one would.
   */
  pending(committedStep: number): PendingKeys[];
  /** Takes back keys {@link pending} gave (a checkpoint's, or a peer's state). */
  restorePending(keys: readonly PendingKeys[]): void;
  close(): Promise<void>;
}
