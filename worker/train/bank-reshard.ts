import { KeyShard, type ShardPlace } from '../bank/key-shard.js';
import type { GradientReducer } from '../collective/gradient-reducer.js';

/** What a reshard found: the new shard, or how many of the bank's keys the members still held together. */
export type ReshardOutcome = { kind: 'resharded'; shard: KeyShard } | { kind: 'incomplete'; held: number; expected: number };

/** `enqueued` as two int32 words (it passes 2^31 in a long run). */
const WORD = 2 ** 30;

/**
 * Deals a partitioned bank anew for a new membership, in memory (docs/architecture.md §4): every
 * member sends every key it holds, with its id, step and place counted back from the newest key, to
 * every member (a collective at `step`: all members call it, in the same order); each keeps what
 * {@link shardOwner} gives its new place, exactly as a restore from a checkpoint's whole bank would.
 * A member that left took its keys with it: then the keys held add up to fewer than the bank's, and
 * the outcome says so (nothing is dealt). A joiner brings an empty shard.
 *
 * The exchange is an all-gather, so each member holds the whole bank for the moment of the deal (as
 * the checkpoint writer does); `enqueued` is the largest any member counts (a joiner's is 0).
 */
export async function reshardBank(shard: KeyShard, place: ShardPlace, reducer: GradientReducer, step: number): Promise<ReshardOutcome> {
  const d = shard.dim;
  const slots = shard.slotsOldestFirst();
  const positions = shard.positions();
  const rows = new Int32Array(2 + 3 * slots.length);
  rows[0] = Math.floor(shard.enqueued / WORD);
  rows[1] = shard.enqueued % WORD;
  const values = new Float32Array(slots.length * d);
  slots.forEach((s, i) => {
    rows.set([shard.ids[s]!, shard.steps[s]!, shard.enqueued - positions[i]!], 2 + 3 * i);
    values.set(shard.keys.subarray(s * d, (s + 1) * d), i * d);
  });
  const blocks = await reducer.allGatherBlocks({ rows, values }, step);
  let enqueued = 0;
  blocks.forEach((b, r) => {
    const n = (b.rows.length - 2) / 3;
    if (b.rows.length < 2 || !Number.isInteger(n) || b.values.length !== n * d || b.rows[0]! < 0 || b.rows[1]! < 0 || b.rows[1]! >= WORD) {
      throw new Error(`bank reshard at step ${step}: rank ${r} sent ${b.rows.length} id words and ${b.values.length} values (dim ${d})`);
    }
    enqueued = Math.max(enqueued, b.rows[0]! * WORD + b.rows[1]!);
  });
  const expected = Math.min(shard.bankSize, enqueued);
  // Every held key by its place in the combined queue, oldest first; a place given twice is a peer's error.
  const byPosition = new Map<number, { rank: number; index: number }>();
  blocks.forEach((b, r) => {
    const own = b.rows[0]! * WORD + b.rows[1]!;
    for (let i = 0; i < (b.rows.length - 2) / 3; i++) {
      const position = own - b.rows[2 + 3 * i + 2]!;
      if (!(position >= enqueued - expected && position < enqueued) || byPosition.has(position)) {
        throw new Error(`bank reshard at step ${step}: rank ${r} sent a key at queue position ${position}, outside the bank's last ${expected} or sent twice`);
      }
      byPosition.set(position, { rank: r, index: i });
    }
  });
  if (byPosition.size !== expected) return { kind: 'incomplete', held: byPosition.size, expected };
  const keys = new Float32Array(expected * d);
  const ids = new Int32Array(expected);
  const steps = new Int32Array(expected);
  for (let j = 0; j < expected; j++) {
    const { rank, index } = byPosition.get(enqueued - expected + j)!;
    const b = blocks[rank]!;
    keys.set(b.values.subarray(index * d, (index + 1) * d), j * d);
    ids[j] = b.rows[2 + 3 * index]!;
    steps[j] = b.rows[2 + 3 * index + 1]!;
  }
  const dealt = new KeyShard(shard.bankSize, d, place);
  dealt.restore(keys, ids, steps, enqueued);
  return { kind: 'resharded', shard: dealt };
}
