import { createHash } from 'node:crypto';
import type { BankMessage } from './key-bank.js';

/**
 * One member's part of a partitioned bank (Partial FC's scheme, docs/architecture.md §4): of the
 * combined queue of the last K keys — every producer's, in (step, producer) order, as a replicated
 * KeyBank holds them — the keys whose producers this member owns. Every message of every producer
 * passes through {@link enqueue}, so the shard knows how far the combined queue has moved on; only
 * the owned ones are stored. The union of the members' shards is the replicated bank, key for key,
 * for any K (no K % anything rule); a shard holds about K/W keys when the producers' batches are
 * alike, and grows past its first capacity when they are not.
 */
export class KeyShard {
  /** Keys, capacity×dim, in slots of a ring; empty slots hold zeros and id −1. */
  keys: Float32Array;
  ids: Int32Array;
  steps: Int32Array;
  /** Position of each slot's key in the combined queue's history (keys enqueued before it, all producers). */
  private sequence: Float64Array;
  /** Slot of the oldest key held. */
  private tail = 0;
  /** Keys held. */
  filled = 0;
  /** Keys enqueued so far by all producers: the combined queue holds those at positions ≥ enqueued − K. */
  enqueued = 0;

  constructor(
    /** K: keys in the whole (combined) bank. */
    readonly bankSize: number,
    readonly dim: number,
    /** The producers whose keys this shard keeps. */
    readonly owns: (producer: number) => boolean,
    /** Slots allocated at first (a shard's fair share, e.g. ⌈K/W⌉ plus a batch). */
    initialCapacity: number,
  ) {
    const c = Math.max(1, Math.min(initialCapacity, bankSize));
    this.keys = new Float32Array(c * dim);
    this.ids = new Int32Array(c).fill(-1);
    this.steps = new Int32Array(c).fill(-1);
    this.sequence = new Float64Array(c);
  }

  /** Slots allocated. */
  get capacity(): number {
    return this.ids.length;
  }

  /** Keys of the combined queue across every shard (the whole bank's fill). */
  get combinedFilled(): number {
    return Math.min(this.bankSize, this.enqueued);
  }

  /** Moves the combined queue on by one producer's message, keeping its keys when the shard owns the producer. */
  enqueue(msg: BankMessage): void {
    const n = msg.ids.length;
    if (msg.keys.length !== n * this.dim) throw new RangeError(`bank message has ${msg.keys.length} values for ${n} keys of dim ${this.dim}`);
    const first = this.enqueued;
    this.enqueued += n;
    const oldestKept = this.enqueued - this.bankSize;
    this.evictBefore(oldestKept);
    if (!this.owns(msg.producer)) return;
    for (let i = Math.max(0, oldestKept - first); i < n; i++) {
      if (this.filled === this.capacity) this.grow();
      const slot = (this.tail + this.filled) % this.capacity;
      this.keys.set(msg.keys.subarray(i * this.dim, (i + 1) * this.dim), slot * this.dim);
      this.ids[slot] = msg.ids[i]!;
      this.steps[slot] = msg.step;
      this.sequence[slot] = first + i;
      this.filled++;
    }
  }

  /** The slots holding keys, oldest first. */
  slotsOldestFirst(): number[] {
    return Array.from({ length: this.filled }, (_, i) => (this.tail + i) % this.capacity);
  }

  /** The held keys' positions in the combined queue, oldest first. */
  positions(): number[] {
    return this.slotsOldestFirst().map((slot) => this.sequence[slot]!);
  }

  /**
   * SHA-256 of the shard's contents — keys, ids, steps and positions in the combined queue, oldest
   * first — and of how far the combined queue has moved: equal shards have equal digests wherever
   * their ring starts in memory.
   */
  digest(): string {
    const h = createHash('sha256');
    for (const slot of this.slotsOldestFirst()) {
      h.update(new Uint8Array(this.keys.buffer, this.keys.byteOffset + slot * this.dim * 4, this.dim * 4));
      h.update(`${this.ids[slot]},${this.steps[slot]},${this.sequence[slot]};`);
    }
    h.update(`${this.filled}/${this.enqueued}`);
    return h.digest('hex').slice(0, 16);
  }

  private evictBefore(position: number): void {
    while (this.filled > 0 && this.sequence[this.tail]! < position) {
      this.keys.fill(0, this.tail * this.dim, (this.tail + 1) * this.dim);
      this.ids[this.tail] = -1;
      this.steps[this.tail] = -1;
      this.tail = (this.tail + 1) % this.capacity;
      this.filled--;
    }
  }

  /** Doubles the slots (never past K), keeping the held keys oldest first from slot 0. */
  private grow(): void {
    const old = { keys: this.keys, ids: this.ids, steps: this.steps, sequence: this.sequence, capacity: this.capacity };
    const c = Math.min(this.bankSize, 2 * old.capacity);
    if (c === old.capacity) throw new RangeError(`bank shard: ${this.filled} keys held in a bank of ${this.bankSize}`);
    this.keys = new Float32Array(c * this.dim);
    this.ids = new Int32Array(c).fill(-1);
    this.steps = new Int32Array(c).fill(-1);
    this.sequence = new Float64Array(c);
    for (let i = 0; i < this.filled; i++) {
      const from = (this.tail + i) % old.capacity;
      this.keys.set(old.keys.subarray(from * this.dim, (from + 1) * this.dim), i * this.dim);
      this.ids[i] = old.ids[from]!;
      this.steps[i] = old.steps[from]!;
      this.sequence[i] = old.sequence[from]!;
    }
    this.tail = 0;
  }
}
