import type { BankMessage } from './key-bank.js';

/** The membership a step is computed in. */
export interface ExchangeRound {
  generation: number;
  /** Producers in the generation: ranks 0..world−1. */
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
  close(): Promise<void>;
}
