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
    const shards = Array.from({ length: world }, (_, rank) => new KeyShard(bankSize, DIM, { rank, world }));
    for (let step = 1; step <= 40; step++) {
      // Batches that differ between producers and steps, sometimes empty, sometimes larger than K.
      const messages = Array.from({ length: world }, (_, p) =>
        message(p, step, rng.next() < 0.1 ? 0 : rng.next() < 0.05 ? bankSize + 3 : 1 + Math.floor(rng.next() * 6)),
      );
      bank.enqueueStep(messages);
      for (const shard of shards) shard.enqueueStep(messages);
      assert.deepEqual(shardContents(shards), bankContents(bank), `step ${step}`);
      assert.equal(
        shards.reduce((s, x) => s + x.filled, 0),
        bank.filled,
      );
      for (const shard of shards) {
        assert.equal(shard.combinedFilled, bank.filled);
        assert.ok(shard.filled <= Math.ceil(bankSize / world) + 2 * world, `shard of ${shard.filled} keys at step ${step}`);
      }
    }
    // A shard restored from the whole bank (a checkpoint) is the one that saw every step.
    const saved = bank.oldestFirst();
    for (const [rank, shard] of shards.entries()) {
      const restored = new KeyShard(bankSize, DIM, { rank, world });
      restored.restore(saved.keys, saved.ids, saved.steps, bank.enqueued);
      assert.equal(restored.digest(), shard.digest(), `rank ${rank} restored`);
      assert.deepEqual(restored.positions(), shard.positions());
    }
  });
}

test('a shard restored on another world size keeps exactly its share of the bank', () => {
  for (const world of [1, 2, 4]) {
    const bank = new KeyBank(20, DIM);
    for (let step = 1; step <= 9; step++) bank.enqueueStep([message(0, step, 3), message(1, step, 2), message(2, step, 1)]);
    const saved = bank.oldestFirst();
    const shards = Array.from({ length: world }, (_, rank) => new KeyShard(20, DIM, { rank, world }));
    for (const s of shards) s.restore(saved.keys, saved.ids, saved.steps, bank.enqueued);
    assert.deepEqual(shardContents(shards), bankContents(bank), `${world} members`);
    // Later steps go on as in a bank that saw them.
    const next = [message(0, 10, 4), message(1, 10, 4)];
    bank.enqueueStep(next);
    for (const s of shards) s.enqueueStep(next);
    assert.deepEqual(shardContents(shards), bankContents(bank), `${world} members, one step on`);
  }
});

test("a shard's digest follows its contents, not where its ring starts or its count started; bad messages are refused", () => {
  const a = new KeyShard(8, DIM, { rank: 0, world: 2 });
  const b = new KeyShard(8, DIM, { rank: 0, world: 2 });
  b.enqueueStep([message(0, 1, 5)]);
  b.clear();
  for (let step = 1; step <= 6; step++) {
    a.enqueueStep([message(0, step, 2), message(1, step, 2)]);
    b.enqueueStep([message(0, step, 2), message(1, step, 2)]);
  }
  // K = 8 holds the last two steps of both producers, four keys each: half of them here.
  assert.equal(a.filled, 4);
  assert.equal(a.digest(), b.digest(), 'the same keys');
  const c = new KeyShard(8, DIM, { rank: 0, world: 2 });
  c.enqueueStep([message(0, 5, 2), message(1, 5, 2)]);
  c.enqueueStep([message(0, 6, 2), message(1, 6, 2)]);
  assert.equal(c.digest(), a.digest(), 'counted from another start');
  b.enqueueStep([message(1, 7, 1)]);
  assert.notEqual(a.digest(), b.digest(), 'the combined queue moved on');
  assert.throws(() => a.enqueueStep([{ keys: new Float32Array(5), ids: new Int32Array(2), step: 7, producer: 0 }]), RangeError);
  assert.throws(() => a.enqueueStep([message(0, 7, 1), message(1, 8, 1)]), RangeError);
  assert.throws(() => a.restore(new Float32Array(9 * DIM), new Int32Array(9), new Int32Array(9), 9), RangeError);
});
