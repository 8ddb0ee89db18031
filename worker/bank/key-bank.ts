import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import type { BankTensors } from '../../common/infonce-bank-loss.js';
import { keyAgeCounts, meanKeyAge } from '../../common/key-age-buckets.js';

/** One step's keys from one producer: the unit of the bank's wire format (docs/architecture.md §4). */
export interface BankMessage {
  /** Keys, n×dim, row-major, unit rows. */
  keys: Float32Array;
  /** Item id of each key (site id, or -1 when items have no identity), for accidental-hit masks. */
  ids: Int32Array;
  /** Training step that produced the keys. */
  step: number;
  /** Rank of the producing worker. */
  producer: number;
}

/**
 * A FIFO replica of the last K keys (MoCo's queue), K×d rows in one array that an engine takes as
 * it is: a key costs its d floats, its id and its step. Any K works: no `K % batch` rule.
 */
export class KeyBank {
  readonly keys: Float32Array;
  /** Item id per slot; -1 marks an empty slot. */
  readonly ids: Int32Array;
  /** Step that produced each slot's key (for key-age metrics). */
  readonly steps: Int32Array;
  /** Next slot to overwrite. */
  head = 0;
  /** Slots holding a key. */
  filled = 0;
  /** Keys enqueued since the ring was empty: the combined queue's position, which a partitioned bank's shards count from. */
  enqueued = 0;

  constructor(
    readonly capacity: number,
    readonly dim: number,
  ) {
    this.keys = new Float32Array(capacity * dim);
    this.ids = new Int32Array(capacity).fill(-1);
    this.steps = new Int32Array(capacity).fill(-1);
  }

  /** Appends a message's keys, overwriting the oldest; a message larger than K keeps its last K keys. */
  enqueue(msg: BankMessage): void {
    const { dim, capacity } = this;
    const n = msg.ids.length;
    if (msg.keys.length !== n * dim) throw new RangeError(`bank message has ${msg.keys.length} values for ${n} keys of dim ${dim}`);
    // Key i goes to slot head + i (mod K) even when only the last K are kept, so that the slot of
    // every key is its queue position mod K (a partitioned bank's shards assemble into this layout).
    for (let i = Math.max(0, n - capacity); i < n; i++) {
      const slot = (this.head + i) % capacity;
      this.keys.set(msg.keys.subarray(i * dim, (i + 1) * dim), slot * dim);
      this.ids[slot] = msg.ids[i]!;
      this.steps[slot] = msg.step;
    }
    this.head = (this.head + n) % capacity;
    this.filled = Math.min(capacity, this.filled + n);
    this.enqueued += n;
  }

  /** Appends one step's keys, every producer's message in producer order. */
  enqueueStep(messages: readonly BankMessage[]): void {
    for (const msg of messages) this.enqueue(msg);
  }

  /** The slots holding keys, oldest first. */
  slotsOldestFirst(): number[] {
    const oldest = this.filled < this.capacity ? 0 : this.head;
    return Array.from({ length: this.filled }, (_, i) => (oldest + i) % this.capacity);
  }

  /** Copies of the held keys, ids and steps, oldest first (what a shard of the bank restores from). */
  oldestFirst(): { keys: Float32Array; ids: Int32Array; steps: Int32Array } {
    const slots = this.slotsOldestFirst();
    const d = this.dim;
    const keys = new Float32Array(slots.length * d);
    slots.forEach((s, i) => keys.set(this.keys.subarray(s * d, (s + 1) * d), i * d));
    return { keys, ids: Int32Array.from(slots, (s) => this.ids[s]!), steps: Int32Array.from(slots, (s) => this.steps[s]!) };
  }

  /** The whole ring as tfjs tensors in both layouts (empty slots are zeros; the caller masks them); the caller disposes. */
  tensors(): BankTensors {
    const keys = tf.tensor2d(this.keys, [this.capacity, this.dim]);
    return { keys, keysT: tf.transpose(keys) };
  }

  /** Empties the ring (before a rebuild from the stream). */
  clear(): void {
    this.keys.fill(0);
    this.ids.fill(-1);
    this.steps.fill(-1);
    this.head = 0;
    this.filled = 0;
    this.enqueued = 0;
  }

  /**
   * SHA-256 of the replica's contents — keys, ids and producing steps from the oldest to the newest —
   * so replicas can be compared from outside. Where the ring starts in memory is not content: a
   * replica rebuilt from the stream equals one that saw every step.
   */
  digest(): string {
    const h = createHash('sha256');
    const oldest = this.filled < this.capacity ? 0 : this.head;
    const segments = [
      [oldest, Math.min(this.filled, this.capacity)],
      [0, oldest],
    ] as const;
    for (const [array, width] of [
      [this.keys, this.dim],
      [this.ids, 1],
      [this.steps, 1],
    ] as const) {
      for (const [from, to] of segments) h.update(new Uint8Array(array.buffer, array.byteOffset + from * width * 4, (to - from) * width * 4));
    }
    h.update(`${this.filled}`);
    return h.digest('hex').slice(0, 16);
  }

  /** Mean age in steps of the keys held, as seen at `step`. */
  meanKeyAge(step: number): number {
    return meanKeyAge(this.steps.subarray(0, this.filled), step);
  }

  /** Keys held per age bucket as seen at `step` (common/key-age-buckets.ts). */
  keyAgeCounts(step: number): number[] {
    return keyAgeCounts(this.steps.subarray(0, this.filled), step);
  }

  /** Restores the ring from saved arrays (checkpoint resume); `enqueued` defaults to the least count that fits head and fill. */
  restore(
    keys: Float32Array,
    ids: Int32Array,
    steps: Int32Array,
    head: number,
    filled: number,
    enqueued = filled < this.capacity ? filled : this.capacity + head,
  ): void {
    if (keys.length !== this.keys.length || ids.length !== this.capacity || steps.length !== this.capacity) {
      throw new RangeError('bank shape differs from the checkpoint');
    }
    const k = this.capacity;
    // The ring fills slots 0.. in order, so until it is full head equals filled.
    if (!Number.isInteger(head) || !Number.isInteger(filled) || head < 0 || head >= k || filled < 0 || filled > k || (filled < k && head !== filled)) {
      throw new RangeError(`bank position head=${head} filled=${filled} does not fit a ring of ${k}`);
    }
    if (!Number.isInteger(enqueued) || enqueued < filled || enqueued % k !== head % k) {
      throw new RangeError(`bank position enqueued=${enqueued} does not fit head=${head} filled=${filled} in a ring of ${k}`);
    }
    this.keys.set(keys);
    this.ids.set(ids);
    this.steps.set(steps);
    this.head = head;
    this.filled = filled;
    this.enqueued = enqueued;
  }
}
