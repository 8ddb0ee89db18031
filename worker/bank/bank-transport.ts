import type { BankMessage, KeyBank } from './key-bank.js';

/**
 * How a worker's keys reach every replica. The training step only publishes its keys and waits for the
 * step's messages to be applied; whether they travel in-process or over NATS is the transport's business.
 */
export interface BankTransport {
  /** Publishes this worker's keys for a step. */
  publish(msg: BankMessage): Promise<void>;
  /** Resolves once every producer's messages up to `step` are applied to the replica, in (step, producer) order. */
  syncTo(step: number): Promise<void>;
  close(): Promise<void>;
}

/** Single-process transport: a published message is the only one of its step, applied at once. */
export class EmbeddedBankTransport implements BankTransport {
  constructor(private readonly bank: KeyBank) {}

  async publish(msg: BankMessage): Promise<void> {
    this.bank.enqueue(msg);
  }

  async syncTo(): Promise<void> {}

  async close(): Promise<void> {}
}
