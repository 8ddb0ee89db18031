import type { BankMessage } from './key-bank.js';

/**
 * How a worker's keys reach every replica. The training step hands over its keys of a step and gets
 * back every producer's keys of that step, in producer order, to add to its replica once the step is
 * committed; whether they travel in-process, around the worker ring or over NATS is the transport's
 * business.
 */
export interface BankTransport {
  /** Exchanges this worker's keys of `msg.step` for every producer's keys of that step, in (step, producer) order. */
  exchange(msg: BankMessage): Promise<BankMessage[]>;
  close(): Promise<void>;
}

/** Single-process transport: a worker's own keys are the only ones of its step. */
export class EmbeddedBankTransport implements BankTransport {
  async exchange(msg: BankMessage): Promise<BankMessage[]> {
    return [msg];
  }

  async close(): Promise<void> {}
}
