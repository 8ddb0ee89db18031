import type { BankTransport } from '../bank/bank-transport.js';
import type { BankMessage, KeyBank } from '../bank/key-bank.js';
import type { RingReducer } from '../collective/ring-reducer.js';

/**
 * The bank transport of a multi-worker run without NATS: every step's keys travel around the worker
 * ring as an all-gather, and every replica applies them in (step, producer) order — the order a single
 * worker on the concatenated batch would enqueue them in.
 */
export class RingBankTransport implements BankTransport {
  private pending: BankMessage | undefined;

  constructor(
    private readonly ring: RingReducer,
    private readonly bank: KeyBank,
  ) {}

  async publish(msg: BankMessage): Promise<void> {
    this.pending = msg;
  }

  async syncTo(step: number): Promise<void> {
    const msg = this.pending;
    if (msg === undefined || msg.step !== step) throw new Error(`bank sync of step ${step} without this worker's keys of that step`);
    this.pending = undefined;
    const blocks = await this.ring.allGatherBlocks({ rows: msg.ids, values: msg.keys }, step);
    blocks.forEach((b, producer) => this.bank.enqueue({ keys: b.values, ids: b.rows, step, producer }));
  }

  async close(): Promise<void> {}
}
