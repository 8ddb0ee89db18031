import type { BankTransport, ExchangeRound, PendingKeys } from './bank-transport.js';
import type { BankMessage } from './key-bank.js';
import type { RingReducer } from '../collective/ring-reducer.js';

/**
 * The bank transport of a multi-worker run without NATS: every step's keys travel around the worker
 * ring as an all-gather, so every replica adds them in (step, producer) order — the order a single
 * worker on the concatenated batch would enqueue them in. With a staleness bound s the gathered keys
 * wait s steps before they are due, as over NATS.
 */
export class RingBankTransport implements BankTransport {
  readonly position = 0;
  readonly dropped = {};
  /** Gathered keys by step, until they are due; a step redone after a membership change replaces its entry. */
  private readonly waiting = new Map<number, PendingKeys[]>();

  constructor(
    private readonly ring: RingReducer,
    /** Steps by which the replica lags (config bank.staleness). */
    private readonly staleness = 0,
  ) {}

  async lag(): Promise<number> {
    return 0;
  }

  async exchange(msg: BankMessage, round: ExchangeRound): Promise<BankMessage[]> {
    const blocks = await this.ring.allGatherBlocks({ rows: msg.ids, values: msg.keys }, msg.step);
    // The ring's topology is the step's generation; its world is the number of blocks.
    const keys = blocks.map((b, producer) => ({ keys: b.values, ids: b.rows, step: msg.step, producer, generation: round.generation, world: blocks.length }));
    if (this.staleness === 0) return keys;
    this.waiting.set(msg.step, keys);
    const due = msg.step - this.staleness;
    for (const step of this.waiting.keys()) if (step < due) this.waiting.delete(step);
    return this.waiting.get(due) ?? [];
  }

  pending(committedStep: number): PendingKeys[] {
    return [...this.waiting]
      .filter(([step]) => step > committedStep - this.staleness && step <= committedStep)
      .sort(([a], [b]) => a - b)
      .flatMap(([, keys]) => keys);
  }

  restorePending(keys: readonly PendingKeys[]): void {
    this.waiting.clear();
    for (const k of keys) this.waiting.set(k.step, [...(this.waiting.get(k.step) ?? []), k]);
  }

  async close(): Promise<void> {}
}
