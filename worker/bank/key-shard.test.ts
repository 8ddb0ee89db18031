import test from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../common/random.js';
import { KeyBank, type BankMessage } from './key-bank.js';
import { KeyShard } from './key-shard.js';

const DIM = 3;

/** A message of `n` keys whose values name their producer, step and row (so any mix-up shows). */
function message(producer: number, step: number, n: number): BankMessage {
  const keys = Float32Array.from({ length: n * DIM }, (_, i) => producer * 1e4 + step * 10 + Math.floor(i / DIM) + (i % DIM) / 10);
  return { keys, ids: Int32Array.from({ length: n }, (_, i) => step * 100 + producer * 10 + i), step, producer };
}

/** The replicated bank's keys, oldest first, as "id@step:first value". */
function bankContents(bank: KeyBank): string[] {
  const oldest = bank.filled < bank.capacity ? 0 : bank.head;
  return Array.from({ length: bank.filled }, (_, i) => {
    const s = (oldest + i) % bank.capacity;
    return `${bank.ids[s]}@${bank.steps[s]}:${bank.keys[s * DIM]}`;
  });
}

/** Every shard's keys merged in their order in the combined queue, in the same form. */
function shardContents(shards: KeyShard[]): string[] {
  const held: { position: number; text: string }[] = [];
  for (const shard of shards) {
    const positions = shard.positions();
    shard.slotsOldestFirst().forEach((s, i) => held.push({ position: positions[i]!, text: `${shard.ids[s]}@${shard.steps[s]}:${shard.keys[s * DIM]}` }));
  }
  return held.sort((a, b) => a.position - b.position).map((h) => h.text);
}

for (const [world, bankSize] of [
  [2, 50],
  [3, 50],
  [3, 7],
  [2, 1],
] as const) {
  test(`K = ${bankSize} partitioned over ${world} members: the shards together hold the replicated bank's keys, each about K/W`, () => {
    const rng = new Rng(world * 100 + bankSize);
    const bank = new KeyBank(bankSize, DIM);
    const shards = Array.from({ length: world }, (_, r) => new KeyShard(bankSize, DIM, (p) => p === r, Math.ceil(bankSize / world) + 4));
    for (let step = 1; step <= 40; step++) {
      // Batches that differ between producers and steps, sometimes empty, sometimes larger than K.
      for (let p = 0; p < world; p++) {
        const n = rng.next() < 0.1 ? 0 : rng.next() < 0.05 ? bankSize + 3 : 1 + Math.floor(rng.next() * 6);
        const msg = message(p, step, n);
        bank.enqueue(msg);
        for (const shard of shards) shard.enqueue(msg);
      }
      assert.deepEqual(shardContents(shards), bankContents(bank), `step ${step}`);
      assert.equal(
        shards.reduce((s, x) => s + x.filled, 0),
        bank.filled,
      );
      for (const shard of shards) assert.equal(shard.combinedFilled, bank.filled);
    }
  });
}

test('a shard keeps only what it owns, its digest follows its contents and not where its ring starts', () => {
  const a = new KeyShard(8, DIM, (p) => p === 0, 2);
  const b = new KeyShard(8, DIM, (p) => p === 0, 8);
  for (let step = 1; step <= 6; step++) {
    for (const p of [0, 1]) {
      a.enqueue(message(p, step, 2));
      b.enqueue(message(p, step, 2));
    }
  }
  // K = 8 holds the last two steps of both producers; producer 0's four of them are here.
  assert.equal(a.filled, 4);
  assert.deepEqual(a.positions(), [16, 17, 20, 21]);
  assert.ok(a.capacity >= 4, 'grew past its first two slots');
  assert.equal(a.digest(), b.digest(), 'the same keys, however the slots were allocated');
  b.enqueue(message(1, 7, 1));
  assert.notEqual(a.digest(), b.digest(), 'the combined queue moved on: one key of producer 0 left');
  assert.equal(b.filled, 3);
  assert.throws(() => a.enqueue({ keys: new Float32Array(5), ids: new Int32Array(2), step: 7, producer: 0 }), RangeError);
});
