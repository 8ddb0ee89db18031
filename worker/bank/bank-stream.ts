/** A message as the bank stream stores it. */
export interface StoredBankMessage {
  /** Position in the stream (from 1), increasing in publication order. */
  seq: number;
  /** The shard it was published to: the producer's rank. */
  producer: number;
  data: Uint8Array;
}

/**
 * The log the bank's keys travel through (docs/architecture.md §4): one shard per producing worker, one
 * sequence over all shards, each shard bounded to its last messages that hold K keys. NATS JetStream is the
 * distributed one; {@link InProcessBankLog} serves a single process.
 */
export interface BankStream {
  /** Appends to `producer`'s shard and resolves with the message's seq once it is stored; `id` de-duplicates retries. */
  publish(producer: number, data: Uint8Array, id: string): Promise<number>;
  /** Delivers every stored message in seq order, then each new one, until close. Called once. */
  subscribe(deliver: (m: StoredBankMessage) => void): Promise<void>;
  /** Delivers every message stored now, in seq order, and resolves once the last has been delivered. */
  replay(deliver: (m: StoredBankMessage) => void): Promise<void>;
  /** The seq of the last stored message (0: none). */
  lastSeq(): Promise<number>;
  close(): Promise<void>;
}

/**
 * An in-process stream shared by every {@link BankStream} handle made from it: the embedded
 * transport of single-machine runs, and a stand-in with the same semantics as JetStream (limits,
 * de-duplication, seq order) for several producers in one process.
 */
export class InProcessBankLog {
  private readonly messages: (StoredBankMessage & { id: string })[] = [];
  private readonly ids = new Map<string, number>();
  private readonly listeners = new Set<(m: StoredBankMessage) => void>();
  private seq = 0;

  /** Holds at most `maxMessagesPerProducer` messages of each producer, dropping its oldest (JetStream's per-subject limit, discard: old). */
  constructor(private readonly maxMessagesPerProducer: number) {}

  /** A handle for one worker. */
  handle(): BankStream {
    let listener: ((m: StoredBankMessage) => void) | undefined;
    return {
      publish: async (producer, data, id) => this.append(producer, data, id),
      subscribe: async (deliver) => {
        for (const m of this.messages) deliver(m);
        listener = deliver;
        this.listeners.add(deliver);
      },
      replay: async (deliver) => {
        for (const m of [...this.messages]) deliver(m);
      },
      lastSeq: async () => this.seq,
      close: async () => {
        if (listener !== undefined) this.listeners.delete(listener);
      },
    };
  }

  private append(producer: number, data: Uint8Array, id: string): number {
    const known = this.ids.get(id);
    if (known !== undefined) return known;
    const m = { seq: ++this.seq, producer, data: data.slice(), id };
    this.messages.push(m);
    this.ids.set(id, m.seq);
    const own = this.messages.filter((x) => x.producer === producer);
    if (own.length > this.maxMessagesPerProducer) {
      const oldest = own[0]!;
      this.messages.splice(this.messages.indexOf(oldest), 1);
      this.ids.delete(oldest.id);
    }
    for (const deliver of this.listeners) deliver(m);
    return m.seq;
  }
}

/**
 * Messages the stream keeps of each producer: enough whole steps to hold K keys (a step's messages
 * hold `batch` keys together, so each producer has one message per step), plus
 * slack for steps in flight or discarded by a membership change and the steps a staleness bound
 * keeps pending.
 */
export function streamMessageLimit(bankSize: number, batch: number, staleness: number): number {
  return Math.ceil(bankSize / batch) + 64 * (staleness + 1);
}
