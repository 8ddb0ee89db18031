import { UserError } from '../../common/user-error.js';
import { BANK_DROP_REASONS, decodeBankKeys, encodeBankKeys, type BankDropReason, type BankEnvelope } from './bank-keys-codec.js';
import type { BankStream, StoredBankMessage } from './bank-stream.js';
import type { BankTransport, ExchangeRound, PendingKeys } from './bank-transport.js';
import type { BankMessage } from './key-bank.js';
import type { MemberBank } from './member-bank.js';

/** The bank's stream stayed unreachable, or a peer's keys missing, past the timeout: the worker stops. */
export class BankUnavailableError extends UserError {}

/** How a {@link StreamBankTransport} runs. */
export interface StreamBankTransportOptions {
  /** The run whose messages count (Membership.run_id); others in the stream are skipped. */
  runId: string;
  /** The job's bank key (Membership.bank_key): what this worker signs with and every message must verify under. */
  bankKey: Uint8Array;
  /** Floats per key. */
  dim: number;
  /** Item ids a key may carry: [0, itemCount), or -1. */
  itemCount: number;
  /** Keys K of the replica: how much history a rebuild needs. */
  capacity: number;
  /** Steps by which the replica lags (config bank.staleness): step t returns the keys of step t − staleness. */
  staleness: number;
  /** How long a publish may keep failing, or a step's keys stay incomplete, ms. */
  timeoutMs: number;
}

/** The messages of one step, by generation, then by producer. */
type StepMessages = Map<number, Map<number, BankEnvelope>>;

/**
 * The bank over a {@link BankStream} (docs/architecture.md §4): each worker publishes its keys of every step to
 * its own shard and reads every shard into a buffer; a step's keys join the replica from the
 * generation that committed the step, one message per rank, in producer order — so every replica
 * holds the same keys at every step, with no wait at all when the staleness bound lets the replica
 * lag. Bad messages are dropped and counted, never applied.
 */
export class StreamBankTransport implements BankTransport {
  /** Messages dropped, by reason. */
  readonly dropped = Object.fromEntries(BANK_DROP_REASONS.map((r) => [r, 0])) as Record<BankDropReason, number>;
  private readonly steps = new Map<number, StepMessages>();
  /** The generation (and world) in which each recent step was computed by this worker, or committed (rebuild). */
  private readonly rounds = new Map<number, ExchangeRound>();
  /** This worker's own messages of the steps not yet due, as published: the stream may not have delivered them back yet. */
  private readonly published = new Map<number, BankEnvelope>();
  private delivered = 0;
  /** The newest step this worker has seen the job reach; null until its first rebuild or exchange. */
  private latestStep: number | null = null;
  private readonly waiters = new Set<() => void>();
  private abortReason: string | null = null;
  private lastLag = 0;

  private constructor(
    private readonly stream: BankStream,
    private readonly o: StreamBankTransportOptions,
  ) {}

  /** Opens the transport and starts reading the stream from its first message. */
  static async open(stream: BankStream, options: StreamBankTransportOptions): Promise<StreamBankTransport> {
    const t = new StreamBankTransport(stream, options);
    await stream.subscribe((m) => t.receive(m));
    return t;
  }

  /** Seq of the last message read from the stream: the replica's stream position. */
  get position(): number {
    return this.delivered;
  }

  /**
   * Messages stored in the stream but not read yet (consumer lag). A figure for step lines and
   * metrics only: while the stream cannot be asked (NATS restarting), the last known lag stands in.
   */
  async lag(): Promise<number> {
    try {
      this.lastLag = Math.max(0, (await this.stream.lastSeq()) - this.delivered);
    } catch {
      // Keep the last figure; the exchange itself waits for the stream and decides when to give up.
    }
    return this.lastLag;
  }

  async exchange(msg: BankMessage, round: ExchangeRound): Promise<BankMessage[]> {
    this.abortReason = null;
    this.latestStep = Math.max(this.latestStep ?? 0, msg.step);
    this.rounds.set(msg.step, round);
    const signed = encodeBankKeys({ ...msg, runId: this.o.runId, generation: round.generation, world: round.world }, this.o.bankKey);
    // The id de-duplicates this worker's retries; its MAC part keeps a forger from claiming it first.
    const id = `${this.o.runId}.${round.generation}.${msg.step}.${msg.producer}.${signed.idSuffix}`;
    await this.retrying(`publish the keys of step ${msg.step}`, () => this.stream.publish(msg.producer, signed.data, id));
    this.published.set(msg.step, { ...msg, runId: this.o.runId, generation: round.generation, world: round.world });
    const due = msg.step - this.o.staleness;
    for (const step of this.published.keys()) if (step <= due) this.published.delete(step);
    if (due < 1) return [];
    const committed = this.rounds.get(due);
    // Known from this worker's own exchange of that step, a rebuild, or a checkpoint's pending keys;
    // only a checkpoint without them (an older file) leaves a gap, and the keys are then skipped.
    if (committed === undefined) return [];
    const keys = await this.complete(due, committed);
    this.prune(due);
    return keys;
  }

  pending(committedStep: number): PendingKeys[] {
    const out: PendingKeys[] = [];
    for (let step = committedStep - this.o.staleness + 1; step <= committedStep; step++) {
      const round = this.rounds.get(step);
      if (round === undefined) continue;
      const messages = new Map(this.steps.get(step)?.get(round.generation));
      // This worker's own keys count from the moment they are published, delivered back or not.
      const own = this.published.get(step);
      if (own !== undefined && own.generation === round.generation && !messages.has(own.producer)) messages.set(own.producer, own);
      for (const m of [...messages.values()].sort((a, b) => a.producer - b.producer))
        out.push({ keys: m.keys, ids: m.ids, step, producer: m.producer, generation: round.generation, world: round.world });
    }
    return out;
  }

  restorePending(keys: readonly PendingKeys[]): void {
    for (const k of keys) {
      this.rounds.set(k.step, { generation: k.generation, world: k.world });
      let byGeneration = this.steps.get(k.step);
      if (byGeneration === undefined) {
        byGeneration = new Map();
        this.steps.set(k.step, byGeneration);
      }
      let byProducer = byGeneration.get(k.generation);
      if (byProducer === undefined) {
        byProducer = new Map();
        byGeneration.set(k.generation, byProducer);
      }
      byProducer.set(k.producer, { ...k, runId: this.o.runId });
      this.latestStep = Math.max(this.latestStep ?? 0, k.step);
    }
  }

  /** Stops the wait of the step in flight: the membership changed, so its keys may never all come. */
  abort(reason: string): void {
    this.abortReason = reason;
    for (const wake of this.waiters) wake();
  }

  /**
   * Rebuilds `bank` (the whole bank, or a member's shard of it) from the stream as it stands after
   * `committedStep` (a joining or restarted worker, before it trains): replays the whole stream, takes
   * each step from the latest generation that produced it, and enqueues the last K keys. Returns false, leaving `bank` as it is, when the stream
   * no longer holds enough of the history (the caller's bank then comes from a checkpoint or a peer).
   */
  async rebuild(bank: MemberBank, committedStep: number): Promise<boolean> {
    const S = this.o.staleness;
    // A replay of its own: the live buffer keeps only the newest steps, and a restarted job may have
    // gone back to a checkpoint older than those.
    const history = new Map<number, StepMessages>();
    await this.retrying('replay the stream', async () => {
      history.clear();
      await this.stream.replay((m) => this.file(m, history, committedStep));
    });
    this.latestStep = committedStep;
    // Read before this worker knew where the job stands: only now can a step from the future be told.
    for (const [step, byGeneration] of this.steps) {
      if (step <= committedStep + 2) continue;
      for (const byProducer of byGeneration.values()) this.dropped.future_step += byProducer.size;
      this.steps.delete(step);
    }
    const chosen: { step: number; messages: BankEnvelope[] }[] = [];
    for (const step of [...history.keys()].sort((a, b) => a - b)) {
      const byGeneration = history.get(step)!;
      const generation = Math.max(...byGeneration.keys());
      const messages = [...byGeneration.get(generation)!.values()].sort((a, b) => a.producer - b.producer);
      const world = messages[0]!.world;
      const complete = messages.length === world;
      if (step > committedStep - S) {
        // Committed but not in the replica yet: their keys are due in the next S steps.
        this.rounds.set(step, { generation, world });
        this.steps.set(step, byGeneration);
      } else {
        chosen.push({ step, messages: complete ? messages : [] });
      }
    }
    // From the newest step back: whole steps until K keys, or an unbroken run back to step 1.
    let keys = 0;
    let from = chosen.length;
    while (from > 0 && keys < this.o.capacity) {
      const c = chosen[from - 1]!;
      const expected = from === chosen.length ? committedStep - S : chosen[from]!.step - 1;
      if (c.step !== expected || c.messages.length === 0) break;
      keys += c.messages.reduce((n, m) => n + m.ids.length, 0);
      from--;
    }
    const reachesStart = from === 0 && (chosen.length === 0 ? committedStep - S < 1 : chosen[0]!.step === 1);
    if (keys < this.o.capacity && !reachesStart) return false;
    bank.clear();
    for (const c of chosen.slice(from)) bank.enqueueStep(c.messages);
    return true;
  }

  async close(): Promise<void> {
    this.abort('the transport closed');
    await this.stream.close();
  }

  private receive(m: StoredBankMessage): void {
    this.delivered = Math.max(this.delivered, m.seq);
    const maxStep = this.latestStep === null ? Number.MAX_SAFE_INTEGER : this.latestStep + 2;
    const dropped = this.file(m, this.steps, maxStep);
    // Earlier runs of a job of the same name share the stream until its limits age them out: counted, not an error.
    if (dropped !== null) this.dropped[dropped]++;
    for (const wake of this.waiters) wake();
  }

  /** Decodes and checks a message and files it under its step, generation and producer; returns why it was dropped, or null. */
  private file(m: StoredBankMessage, into: Map<number, StepMessages>, maxStep: number): BankDropReason | null {
    const r = decodeBankKeys(m.data, { key: this.o.bankKey, runId: this.o.runId, dim: this.o.dim, itemCount: this.o.itemCount, sender: m.producer, maxStep });
    if (typeof r === 'string') return r;
    let byGeneration = into.get(r.step);
    if (byGeneration === undefined) {
      byGeneration = new Map();
      into.set(r.step, byGeneration);
    }
    let byProducer = byGeneration.get(r.generation);
    if (byProducer === undefined) {
      byProducer = new Map();
      byGeneration.set(r.generation, byProducer);
    }
    if (byProducer.has(r.producer)) return 'duplicate';
    byProducer.set(r.producer, r);
    return null;
  }

  /** Every producer's keys of `step` in `round`, in producer order, once all have arrived. */
  private async complete(step: number, round: ExchangeRound): Promise<BankEnvelope[]> {
    const got = () => this.steps.get(step)?.get(round.generation);
    await this.until(
      () => (got()?.size ?? 0) >= round.world,
      `receive every producer's keys of step ${step}`,
      () => {
        const have = got();
        const missing = Array.from({ length: round.world }, (_, p) => p).filter((p) => !have?.has(p));
        return `missing producers ${missing.join(', ')} of generation ${round.generation}`;
      },
    );
    return [...got()!.values()].filter((m) => m.producer < round.world).sort((a, b) => a.producer - b.producer);
  }

  /** Forgets steps older than the newest ones whose keys fill the bank (what a rebuild needs). */
  private prune(due: number): void {
    let keys = 0;
    for (let s = due; s >= 1; s--) {
      if (keys >= this.o.capacity) {
        for (const step of this.steps.keys()) if (step <= s) this.steps.delete(step);
        for (const step of this.rounds.keys()) if (step <= s) this.rounds.delete(step);
        return;
      }
      const round = this.rounds.get(s);
      const messages = round === undefined ? undefined : this.steps.get(s)?.get(round.generation);
      if (messages === undefined) return;
      for (const m of messages.values()) keys += m.ids.length;
    }
  }

  /** Resolves once `done()` holds; rejects when aborted, or with a {@link BankUnavailableError} after the timeout. */
  private until(done: () => boolean, what: string, detail?: () => string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const finish = (err?: Error) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (err === undefined) resolve();
        else reject(err);
      };
      const check = () => {
        if (this.abortReason !== null) finish(new Error(`bank: ${this.abortReason}`));
        else if (done()) finish();
      };
      const timer = setTimeout(
        () =>
          finish(new BankUnavailableError(`bank: could not ${what} within ${this.o.timeoutMs / 1000} s${detail ? ` (${detail()})` : ''}: is NATS reachable?`)),
        this.o.timeoutMs,
      );
      this.waiters.add(check);
    });
  }

  /** Runs `op` until it succeeds, retrying through an outage until the timeout. */
  private async retrying<T>(what: string, op: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.o.timeoutMs;
    for (;;) {
      try {
        return await op();
      } catch (err) {
        if (this.abortReason !== null) throw new Error(`bank: ${this.abortReason}`);
        if (Date.now() >= deadline) throw new BankUnavailableError(`bank: could not ${what} for ${this.o.timeoutMs / 1000} s: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}
