import { partitionPoint } from '../../common/partition-point.js';
import { Rng } from '../../common/random.js';
import type { DatasetManifest } from './dataset-manifest.js';

/** Where a stream position's example is: its training shard, and its index among the shard's examples. */
export interface ExampleLocation {
  shard: number;
  /** In [0, the shard's examples): a row with c clicks holds c consecutive indices. */
  example: number;
}

/** Shards an epoch's block holds: the stream mixes the examples of this many shards at a time. */
export const BLOCK_SHARDS = 4;

/**
 * A run of consecutive stream positions inside one block of one epoch: positions [from, to) of the
 * block's permutation, which reads the examples of `shards` only (commits.jsonl's `shard_ranges`).
 */
export interface ShardRange {
  epoch: number;
  /** The block's shards, in the epoch's shard order. */
  shards: number[];
  /** Examples in the block (its shards' examples): its positions are [0, examples). */
  examples: number;
  range: [from: number, to: number];
}

/**
 * The example stream of a prepared dataset, as the coordinator's ranges of positions address it:
 * position p is example ⌊p/N⌋'s epoch order at p mod N. Each epoch visits the training shards in a
 * seeded order, in blocks of `blockShards` consecutive shards of that order, and a block's examples
 * in a seeded pseudo-random permutation (a Feistel bijection, so no table of them is built). Every
 * worker computes the same stream whatever the world size, so any contiguous N positions hold each
 * example once, and a worker needs in memory only the shards of the blocks its positions fall in
 * (Mosaic StreamingDataset's block shuffle, made elastic by addressing positions, not workers).
 */
export class ShardedExampleOrder {
  /** Examples per epoch. */
  readonly size: number;
  private cachedEpoch = -1;
  private blocks: { start: number; shards: number[]; starts: number[]; size: number; keys: number[] }[] = [];

  constructor(
    /** Examples of each training shard (≥ 1 in all). */
    private readonly shardExamples: readonly number[],
    private readonly seed: number,
    private readonly blockShards: number,
  ) {
    this.size = shardExamples.reduce((a, b) => a + b, 0);
    if (!Number.isSafeInteger(this.size) || this.size <= 0) throw new RangeError('an epoch needs at least one example');
    if (!Number.isInteger(blockShards) || blockShards < 1) throw new RangeError(`blockShards must be a positive integer, got ${blockShards}`);
  }

  /** The order of a prepared dataset's training shards for `seed`, in blocks of {@link BLOCK_SHARDS}. */
  static ofDataset(manifest: DatasetManifest, seed: number): ShardedExampleOrder {
    return new ShardedExampleOrder(
      manifest.shards.map((s) => s.examples),
      seed,
      BLOCK_SHARDS,
    );
  }

  /** Epoch of a position. */
  epochOf(position: number): number {
    return Math.floor(position / this.size);
  }

  /** The examples at positions [start, start + count) (a range may cross epoch boundaries). */
  locate(start: number, count: number): ExampleLocation[] {
    checkRange(start, count);
    const out: ExampleLocation[] = [];
    for (let i = 0; i < count; i++) {
      const p = start + i;
      const blocks = this.epochBlocks(Math.floor(p / this.size));
      const q = p % this.size;
      const block = blocks[partitionPoint(blocks.length, (b) => blocks[b]!.start <= q) - 1]!;
      const j = feistel(q - block.start, block.size, block.keys);
      const k = partitionPoint(block.starts.length, (s) => block.starts[s]! <= j) - 1;
      out.push({ shard: block.shards[k]!, example: j - block.starts[k]! });
    }
    return out;
  }

  /** The blocks positions [start, start + count) fall in, and where in each (a few per step: a block holds thousands of examples). */
  shardRanges(start: number, count: number): ShardRange[] {
    checkRange(start, count);
    const out: ShardRange[] = [];
    const end = start + count;
    let p = start;
    while (p < end) {
      const epoch = Math.floor(p / this.size);
      const blocks = this.epochBlocks(epoch);
      const q = p % this.size;
      const block = blocks[partitionPoint(blocks.length, (b) => blocks[b]!.start <= q) - 1]!;
      const from = q - block.start;
      const to = Math.min(block.size, from + (end - p));
      out.push({ epoch, shards: block.shards, examples: block.size, range: [from, to] });
      p += to - from;
    }
    return out;
  }

  private epochBlocks(epoch: number) {
    if (epoch !== this.cachedEpoch) {
      const rng = new Rng((this.seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0);
      const order = rng.shuffle(Int32Array.from(this.shardExamples, (_, i) => i));
      this.blocks = [];
      let start = 0;
      for (let b = 0; b < order.length; b += this.blockShards) {
        const shards = Array.from(order.subarray(b, b + this.blockShards));
        const starts: number[] = [];
        let size = 0;
        for (const s of shards) {
          starts.push(size);
          size += this.shardExamples[s]!;
        }
        if (size === 0) continue;
        this.blocks.push({ start, shards, starts, size, keys: [rng.int(2 ** 31), rng.int(2 ** 31), rng.int(2 ** 31), rng.int(2 ** 31)] });
        start += size;
      }
      this.cachedEpoch = epoch;
    }
    return this.blocks;
  }
}

function checkRange(start: number, count: number): void {
  if (!Number.isSafeInteger(start) || start < 0 || !Number.isInteger(count) || count < 0) {
    throw new RangeError(`positions [${start}, ${start}+${count}) are not a range of the example stream`);
  }
}

/**
 * A bijection of [0, n) keyed by `keys`: a four-round balanced Feistel network on the smallest even
 * number of bits covering n, walked until the value falls inside [0, n) (cycle walking keeps it a
 * permutation of [0, n)).
 */
export function feistel(i: number, n: number, keys: readonly number[]): number {
  let bits = 2;
  while (2 ** bits < n) bits += 2;
  const half = bits / 2;
  const mask = 2 ** half - 1;
  let x = i;
  do {
    let left = Math.floor(x / 2 ** half);
    let right = x & mask;
    for (const key of keys) {
      const next = (left ^ round(right, key)) & mask;
      left = right;
      right = next;
    }
    x = left * 2 ** half + right;
  } while (x >= n);
  return x;
}

function round(value: number, key: number): number {
  let h = Math.imul(value ^ key, 0x9e3779b1);
  h ^= h >>> 15;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}
