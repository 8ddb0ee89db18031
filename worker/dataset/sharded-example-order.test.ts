import assert from 'node:assert/strict';
import test from 'node:test';
import { feistel, ShardedExampleOrder } from './sharded-example-order.js';

test('feistel: a permutation of [0, n) for every n, other keys another one', () => {
  for (const n of [1, 2, 3, 7, 16, 17, 1000, 4097]) {
    const seen = new Set(Array.from({ length: n }, (_, i) => feistel(i, n, [1, 2, 3, 4])));
    assert.equal(seen.size, n, `n = ${n}`);
    assert.ok([...seen].every((x) => x >= 0 && x < n));
  }
  const a = Array.from({ length: 100 }, (_, i) => feistel(i, 100, [1, 2, 3, 4]));
  const b = Array.from({ length: 100 }, (_, i) => feistel(i, 100, [5, 6, 7, 8]));
  assert.notDeepEqual(a, b);
});

test('every epoch holds each example of every shard exactly once, in an order of its own, the same for any split of the positions', () => {
  const shards = [5, 7, 1, 9, 3, 12];
  const order = new ShardedExampleOrder(shards, 11, 2);
  const n = order.size;
  assert.equal(n, 37);
  const epochs = [0, 1, 2].map((e) => order.locate(e * n, n).map((l) => `${l.shard}:${l.example}`));
  const every = shards.flatMap((count, s) => Array.from({ length: count }, (_, i) => `${s}:${i}`)).sort();
  for (const e of epochs) assert.deepEqual([...e].sort(), every);
  assert.notDeepEqual(epochs[0], epochs[1]);
  // However the positions are cut into ranges (workers, steps, re-plans), each position is the same example.
  const pieces = [0, 3, 11, 12, 30, 37 + 5, 3 * n].flatMap((at, i, all) => (i + 1 < all.length ? order.locate(at, all[i + 1]! - at) : []));
  assert.deepEqual(
    pieces.map((l) => `${l.shard}:${l.example}`),
    epochs.flat(),
  );
  assert.deepEqual(new ShardedExampleOrder(shards, 11, 2).locate(0, 3 * n), order.locate(0, 3 * n));
  assert.notDeepEqual(new ShardedExampleOrder(shards, 12, 2).locate(0, n), order.locate(0, n));
});

test('consecutive positions stay within a block of shards: what a worker holds is a block, not the dataset', () => {
  const shards = Array.from({ length: 40 }, (_, i) => 50 + i);
  const order = new ShardedExampleOrder(shards, 3, 4);
  for (let start = 0; start < 2 * order.size; start += 97) {
    // 64 consecutive positions touch at most two blocks: at most 8 of the 40 shards.
    assert.ok(new Set(order.locate(start, 64).map((l) => l.shard)).size <= 8, `positions from ${start}`);
  }
});
