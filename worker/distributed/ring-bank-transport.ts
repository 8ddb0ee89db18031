import type { BankTransport } from '../bank/bank-transport.js';
import type { BankMessage } from '../bank/key-bank.js';
import type { RingReducer } from '../collective/ring-reducer.js';

/**
 * The bank transport of a multi-worker run without NATS: every step's keys travel around the worker
 * ring as an all-gather, so every replica adds them in (step, producer) order — the order a single
 * worker on the concatenated batch would enqueue them in.
 */
export class RingBankTransport implements BankTransport {
  readonly position = 0;
  readonly dropped = {};

  constructor(private readonly ring: RingReducer) {}

  async lag(): Promise<number> {
    return 0;
  }

  async exchange(msg: BankMessage): Promise<BankMessage[]> {
    const blocks = await this.ring.allGatherBlocks({ rows: msg.ids, values: msg.keys }, msg.step);
    return blocks.map((b, producer) => ({ keys: b.values, ids: b.rows, step: msg.step, producer }));
  }

  async close(): Promise<void> {}
}
