import test from 'node:test';
import assert from 'node:assert/strict';
import { allGatherOrigin, allReducePhases, allReduceSegment, predecessorOf, segmentRange, successorOf } from './ring-plan.js';

test('ring all-reduce schedule: each rank sends on what it received, every segment is reduced along the whole ring once', () => {
  for (let world = 2; world <= 6; world++) {
    for (let rank = 0; rank < world; rank++) {
      const pred = predecessorOf(rank, world);
      assert.equal(successorOf(pred, world), rank);
      for (let phase = 0; phase < allReducePhases(world); phase++) {
        // What the predecessor sends in a phase is what this rank receives in it.
        const predSends = phase === 0 ? pred : allReduceSegment(pred, world, phase - 1);
        assert.equal(allReduceSegment(rank, world, phase), predSends, `world ${world} rank ${rank} phase ${phase}`);
      }
      // Reduce-scatter brings every segment but the rank's own; all-gather every segment but the one it completed.
      const rs = Array.from({ length: world - 1 }, (_, k) => allReduceSegment(rank, world, k));
      const ag = Array.from({ length: world - 1 }, (_, j) => allReduceSegment(rank, world, world - 1 + j));
      assert.deepEqual(
        [...rs, rank].sort(),
        Array.from({ length: world }, (_, s) => s),
      );
      assert.equal(rs[world - 2], successorOf(rank, world), 'completes segment rank + 1');
      assert.deepEqual(
        [...ag, successorOf(rank, world)].sort(),
        Array.from({ length: world }, (_, s) => s),
      );
      const origins = Array.from({ length: world - 1 }, (_, k) => allGatherOrigin(rank, world, k));
      assert.deepEqual(
        [...origins, rank].sort(),
        Array.from({ length: world }, (_, s) => s),
      );
    }
  }
});

test('segments cover the buffer contiguously with sizes differing by at most one, empty when length < world', () => {
  for (const [length, world] of [
    [0, 3],
    [2, 4],
    [10, 3],
    [3 * 2 ** 20 + 7, 4],
  ] as const) {
    let next = 0;
    const sizes: number[] = [];
    for (let s = 0; s < world; s++) {
      const { start, end } = segmentRange(length, world, s);
      assert.equal(start, next);
      sizes.push(end - start);
      next = end;
    }
    assert.equal(next, length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${length}/${world}: ${sizes}`);
  }
});
