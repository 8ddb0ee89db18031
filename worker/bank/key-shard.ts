import { createHash } from 'node:crypto';
import { keyAgeCounts, meanKeyAge } from '../../common/key-age-buckets.js';
import type { BankMessage } from './key-bank.js';

/** A member's place in the partition of the bank: it keeps the keys {@link shardOwner} gives `rank` of `world`. */
export interface ShardPlace {
  rank: number;
  world: number;
}

/**
 * The member that keeps a key: the key `fromEnd` places before the end of step `step`'s keys (0 is
 * the step's last key, counted over every producer's keys in producer order) goes to
 * (step + fromEnd) mod world. The keys of a step are dealt round-robin and the deal turns with the
 * step, so shards stay within a few keys of K/W. Counting from the step's end makes the rule survive
 * any cut of the queue: the oldest keys leave first, so a key's later step-mates are always still
 * there — in a checkpoint's bank, a replay of the stream, or a live queue alike.
 */
export function shardOwner(step: number, fromEnd: number, world: number): number {
  return (step + fromEnd) % world;
}

/**
 * One member's part of a partitioned bank (Partial FC's scheme, docs/architecture.md §4): of the
 * combined queue of the last K keys — every producer's, in (step, producer) order, as a replicated
 * KeyBank holds them — the keys {@link shardOwner} gives this member. Every step's keys pass through
 * {@link enqueueStep}, so the shard knows how far the combined queue has moved on; only its own are
 * stored. The members' shards together are the replicated bank, key for key, for any K (no
 * K % anything rule), each about K/W keys.
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
  /**
   * Keys enqueued so far by all producers: the combined queue holds those at positions ≥ enqueued − K.
   * Every member counts from the same start (a fresh run, a checkpoint, a replay), so positions agree.
   */
  enqueued = 0;

  constructor(
    /** K: keys in the whole (combined) bank. */
    readonly bankSize: number,
    readonly dim: number,
    readonly place: ShardPlace,
  ) {
    // A fair share plus the slack of the deal (at most one key a step more than another member).
    const c = Math.max(1, Math.min(bankSize, Math.ceil(bankSize / place.world) + 2 * place.world));
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

  /** Moves the combined queue on by one step's keys (every producer's message of the step, in producer order), keeping this shard's. */
  enqueueStep(messages: readonly BankMessage[]): void {
    // Checked whole before anything moves: a refused step changes nothing.
    for (const msg of messages) {
      const n = msg.ids.length;
      if (msg.keys.length !== n * this.dim) throw new RangeError(`bank message has ${msg.keys.length} values for ${n} keys of dim ${this.dim}`);
      if (msg.step !== messages[0]!.step) throw new RangeError(`bank step of messages from steps ${messages[0]!.step} and ${msg.step}`);
    }
    const total = messages.reduce((n, m) => n + m.ids.length, 0);
    let index = 0;
    for (const msg of messages) {
      const n = msg.ids.length;
      for (let i = 0; i < n; i++, index++) this.offer(msg.keys.subarray(i * this.dim, (i + 1) * this.dim), msg.ids[i]!, msg.step, total - 1 - index);
    }
  }

  /**
   * Refills the shard from a whole bank's keys, oldest first (a checkpoint's), as if it had seen
   * them enqueued: `enqueued` is the bank's count of keys ever enqueued (the combined queue's position).
   */
  restore(keys: Float32Array, ids: Int32Array, steps: Int32Array, enqueued: number): void {
    const n = ids.length;
    if (keys.length !== n * this.dim || steps.length !== n)
      throw new RangeError(`bank of ${n} ids, ${steps.length} steps and ${keys.length} values of dim ${this.dim}`);
    if (n > this.bankSize || enqueued < n) throw new RangeError(`bank of ${n} keys at position ${enqueued} does not fit a bank of ${this.bankSize}`);
    this.clear();
    this.enqueued = enqueued - n;
    for (let first = 0; first < n; ) {
      let end = first;
      while (end < n && steps[end] === steps[first]) end++;
      for (let i = first; i < end; i++) this.offer(keys.subarray(i * this.dim, (i + 1) * this.dim), ids[i]!, steps[i]!, end - 1 - i);
      first = end;
    }
  }

  /** Empties the shard (before a rebuild from the stream). */
  clear(): void {
    this.keys.fill(0);
    this.ids.fill(-1);
    this.steps.fill(-1);
    this.tail = 0;
    this.filled = 0;
    this.enqueued = 0;
  }

  /** The slot of the i-th oldest key held (i < filled): a step's loop over the shard without an array of slots. */
  heldSlot(i: number): number {
    return (this.tail + i) % this.capacity;
  }

  /** The slots holding keys, oldest first. */
  slotsOldestFirst(): number[] {
    return Array.from({ length: this.filled }, (_, i) => this.heldSlot(i));
  }

  /** The held keys' positions in the combined queue, oldest first. */
  positions(): number[] {
    return this.slotsOldestFirst().map((slot) => this.sequence[slot]!);
  }

  /**
   * SHA-256 of the shard's contents — keys, ids, steps and places in the combined queue (counted from
   * its newest key), oldest first — and of the whole bank's fill: equal shards have equal digests
   * wherever their ring starts in memory and wherever the members started counting.
   */
  digest(): string {
    const h = createHash('sha256');
    for (let i = 0; i < this.filled; i++) {
      const slot = this.heldSlot(i);
      h.update(new Uint8Array(this.keys.buffer, this.keys.byteOffset + slot * this.dim * 4, this.dim * 4));
      h.update(`${this.ids[slot]},${this.steps[slot]},${this.enqueued - this.sequence[slot]!};`);
    }
    h.update(`${this.filled}/${this.combinedFilled}`);
    return h.digest('hex').slice(0, 16);
  }

  /** Mean age in steps of the keys this shard holds, as seen at `step`. */
  meanKeyAge(step: number): number {
    return meanKeyAge(this.heldSteps(), step);
  }

  /** Keys held per age bucket as seen at `step` (common/key-age-buckets.ts). */
  keyAgeCounts(step: number): number[] {
    return keyAgeCounts(this.heldSteps(), step);
  }

  private heldSteps(): Int32Array {
    return Int32Array.from({ length: this.filled }, (_, i) => this.steps[this.heldSlot(i)]!);
  }

  /** One key of the combined queue, `fromEnd` before the end of its step: the queue moves on by one, and the key is kept when it is this shard's. */
  private offer(key: Float32Array, id: number, step: number, fromEnd: number): void {
    const position = this.enqueued++;
    this.evictBefore(this.enqueued - this.bankSize);
    if (shardOwner(step, fromEnd, this.place.world) !== this.place.rank) return;
    if (this.filled === this.capacity) this.grow();
    const slot = (this.tail + this.filled) % this.capacity;
    this.keys.set(key, slot * this.dim);
    this.ids[slot] = id;
    this.steps[slot] = step;
    this.sequence[slot] = position;
    this.filled++;
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
