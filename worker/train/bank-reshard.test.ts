import test from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../common/random.js';
import type { BankMessage } from '../bank/key-bank.js';
import { KeyShard } from '../bank/key-shard.js';
import { startTestRing } from '../../testing/ring-test-helpers.js';
import { reshardBank } from './bank-reshard.js';

const DIM = 3;

/** One step's messages of `producers` producers, random sizes (sometimes empty), values naming producer, step and row. */
function stepMessages(rng: Rng, producers: number, step: number): BankMessage[] {
  return Array.from({ length: producers }, (_, p) => {
    const n = rng.next() < 0.1 ? 0 : 1 + Math.floor(rng.next() * 6);
    const keys = Float32Array.from({ length: n * DIM }, (_, i) => p * 1e4 + step * 10 + Math.floor(i / DIM) + (i % DIM) / 10);
    return { keys, ids: Int32Array.from({ length: n }, (_, i) => step * 100 + p * 10 + i), step, producer: p };
  });
}

/** Shards of every rank of `world` that saw `history` (the deal a checkpoint's restore or a fresh run would give). */
function dealt(history: BankMessage[][], bankSize: number, world: number): KeyShard[] {
  const shards = Array.from({ length: world }, (_, rank) => new KeyShard(bankSize, DIM, { rank, world }));
  for (const messages of history) for (const s of shards) s.enqueueStep(messages);
  return shards;
}

for (const [from, to, bankSize] of [
  [2, 3, 40],
  [3, 4, 17],
  [3, 2, 40],
  [2, 2, 9],
] as const) {
  test(`a partitioned bank of K = ${bankSize} on ${from} members dealt anew in memory for ${to}: each shard is the one ${to} members would hold, and stays so`, async (t) => {
    const rng = new Rng(from * 10 + to + bankSize);
    const history = Array.from({ length: 30 }, (_, i) => stepMessages(rng, from, i + 1));
    const old = dealt(history, bankSize, from);
    // Ranks move: old rank r becomes new rank (r + 1) mod to; joiners (new ranks without an old shard) bring empty ones.
    // A shrink keeps every old member for the deal (a graceful leave hands its keys over first).
    const members = Math.max(from, to);
    const ring = await startTestRing(t, members, { timeoutMs: 10_000 });
    const shardOf = (member: number) => old[member] ?? new KeyShard(bankSize, DIM, { rank: member, world: members });
    const outcomes = await Promise.all(ring.reducers.map((r, member) => reshardBank(shardOf(member), { rank: (member + 1) % members, world: to }, r, 30)));
    const expected = dealt(history, bankSize, to);
    for (const [member, outcome] of outcomes.entries()) {
      assert.equal(outcome.kind, 'resharded');
      if (outcome.kind !== 'resharded') continue;
      const rank = (member + 1) % members;
      if (rank >= to) continue;
      assert.equal(outcome.shard.digest(), expected[rank]!.digest(), `member ${member} as rank ${rank}`);
      assert.equal(outcome.shard.enqueued, expected[rank]!.enqueued);
    }
    // Ten more steps on the new shards and on the reference: still the same keys.
    const next = outcomes.map((o, member) => ({ rank: (member + 1) % members, shard: o.kind === 'resharded' ? o.shard : null })).filter((x) => x.rank < to);
    for (let step = 31; step <= 40; step++) {
      const messages = stepMessages(rng, to, step);
      for (const x of next) x.shard!.enqueueStep(messages);
      for (const s of expected) s.enqueueStep(messages);
    }
    for (const x of next) assert.equal(x.shard!.digest(), expected[x.rank]!.digest(), `rank ${x.rank} after ten more steps`);
  });
}

test('a member gone with its shard: the others hold fewer keys than the bank, and nothing is dealt', async (t) => {
  const rng = new Rng(3);
  const history = Array.from({ length: 20 }, (_, i) => stepMessages(rng, 3, i + 1));
  const old = dealt(history, 30, 3);
  const ring = await startTestRing(t, 2, { timeoutMs: 10_000 });
  const outcomes = await Promise.all(ring.reducers.map((r, rank) => reshardBank(old[rank]!, { rank, world: 2 }, r, 20)));
  for (const o of outcomes) assert.deepEqual(o, { kind: 'incomplete', held: old[0]!.filled + old[1]!.filled, expected: 30 });
});

test('a peer that sends a key twice, or one outside the bank, fails the reshard with a message naming it', async (t) => {
  const rng = new Rng(4);
  const history = Array.from({ length: 10 }, (_, i) => stepMessages(rng, 2, i + 1));
  const [a] = dealt(history, 20, 2);
  const ring = await startTestRing(t, 2, { timeoutMs: 10_000 });
  // Rank 1 claims rank 0's keys as its own: every place comes twice.
  const results = await Promise.allSettled([
    reshardBank(a!, { rank: 0, world: 2 }, ring.reducers[0]!, 10),
    reshardBank(a!, { rank: 1, world: 2 }, ring.reducers[1]!, 10),
  ]);
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    assert.match(
      (r as PromiseRejectedResult).reason.message,
      /bank reshard at step 10: rank 1 sent a key at queue position \d+, outside the bank's last 20 or sent twice/,
    );
  }
});
