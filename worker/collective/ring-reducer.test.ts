import test from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../common/random.js';
import { expectArraysClose } from '../../testing/test-helpers.js';
import type { SparseRowGrad } from '../model/sparse-embedding.js';
import { startTestRing } from '../../testing/ring-test-helpers.js';
import { segmentRange } from './ring-plan.js';
import { allToAllBlocks } from './all-to-all.js';

function randomGrad(rng: Rng, length: number): Float32Array {
  const g = new Float32Array(length);
  for (let i = 0; i < length; i++) g[i] = rng.normal();
  return g;
}

/** Elementwise float64 mean of the (float32) inputs. */
function float64Mean(grads: Float32Array[]): Float64Array {
  const out = new Float64Array(grads[0]!.length);
  for (const g of grads) for (let i = 0; i < g.length; i++) out[i]! += g[i]!;
  for (let i = 0; i < out.length; i++) out[i]! /= grads.length;
  return out;
}

function bytes(a: Float32Array | Int32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function assertIdentical(outs: Float32Array[], what: string): void {
  for (let r = 1; r < outs.length; r++) assert.ok(bytes(outs[r]!).equals(bytes(outs[0]!)), `${what}: rank ${r}'s result differs from rank 0's`);
}

test('all-reduce: every worker gets the float64 mean within float32 tolerance, bit-identical across workers', async (t) => {
  const rng = new Rng(11);
  for (const world of [1, 2, 3, 4]) {
    const ring = await startTestRing(t, world, { timeoutMs: 10_000 });
    let step = 0;
    for (const length of [0, 1, world - 1, 1000, 3 * 2 ** 20 + 7]) {
      const inputs = ring.reducers.map(() => randomGrad(rng, length));
      const expected = float64Mean(inputs);
      step++;
      const outs = await Promise.all(ring.reducers.map((r, rank) => r.allReduceMean(inputs[rank]!.slice(), step)));
      for (const out of outs) assert.equal(out.length, length);
      expectArraysClose(outs[0]!, expected, { atol: 1e-6, rtol: 1e-5 });
      assertIdentical(outs, `world ${world} length ${length}`);
    }
    await ring.close();
  }
});

test("reduce-scatter: each worker gets the sum of its segment (rank + 1), the all-reduce's bytes, then an all-reduce of the same step", async (t) => {
  const rng = new Rng(12);
  for (const world of [1, 2, 3, 4]) {
    const ring = await startTestRing(t, world, { timeoutMs: 10_000 });
    for (const [step, length] of [
      [1, 1],
      [2, world * 5 + 2],
      [3, 2 ** 20 + 3],
    ] as const) {
      const inputs = ring.reducers.map(() => randomGrad(rng, length));
      const summed = await Promise.all(ring.reducers.map((r, rank) => r.allReduceSum(inputs[rank]!.slice(), step)));
      const outs = await Promise.all(ring.reducers.map((r, rank) => r.reduceScatterSum(inputs[rank]!.slice(), step)));
      outs.forEach((out, rank) => {
        const { start, end } = segmentRange(length, world, (rank + 1) % world);
        assert.ok(bytes(out).equals(bytes(summed[rank]!.subarray(start, end))), `world ${world} length ${length}: rank ${rank}'s segment is the all-reduce's`);
      });
      // The step's collectives go on: the tensor numbers of the reduce-scatter are its own.
      const after = await Promise.all(ring.reducers.map((r) => r.allReduceSum(Float32Array.of(1), step)));
      for (const a of after) assert.deepEqual(Array.from(a), [world]);
    }
    await ring.close();
  }
});

test('gather: the root gets every block by rank, the others null; the step goes on', async (t) => {
  for (const world of [1, 2, 3]) {
    const ring = await startTestRing(t, world, { timeoutMs: 10_000, chunkBytes: 64 });
    const root = world - 1;
    const blocks = ring.reducers.map((_, r) => ({
      rows: Int32Array.from({ length: 5 + r }, (_, i) => 10 * r + i),
      values: Float32Array.from({ length: 40 * r }, (_, i) => r + i / 64),
    }));
    const outs = await Promise.all(ring.reducers.map((red, r) => red.gatherBlocks(blocks[r]!, 7, root)));
    outs.forEach((out, r) => {
      if (r !== root) return assert.equal(out, null, `rank ${r} keeps nothing`);
      assert.equal(out!.length, world);
      out!.forEach((b, origin) =>
        assert.deepEqual([Array.from(b.rows), Array.from(b.values)], [Array.from(blocks[origin]!.rows), Array.from(blocks[origin]!.values)]),
      );
    });
    const after = await Promise.all(ring.reducers.map((red) => red.allReduceSum(Float32Array.of(2), 7)));
    for (const a of after) assert.deepEqual(Array.from(a), [2 * world]);
    await ring.close();
  }
});

test('all-reduce: many small chunks through a small window, several steps on one stream, same bytes on a rerun', async (t) => {
  const world = 3;
  const rng = new Rng(5);
  const inputs = [1, 2, 3].map((step) => Array.from({ length: world }, () => randomGrad(rng, 1000 + step)));
  const run = async (): Promise<Float32Array[][]> => {
    // 64-byte chunks: a segment of ~334 floats is 21 chunks; a 4-chunk window keeps the sender waiting on acknowledgements.
    const ring = await startTestRing(t, world, { chunkBytes: 64, windowBytes: 256, timeoutMs: 5000 });
    const results: Float32Array[][] = [];
    for (const [i, grads] of inputs.entries()) {
      results.push(await Promise.all(ring.reducers.map((r, rank) => r.allReduceMean(grads[rank]!.slice(), i + 1))));
    }
    await ring.close();
    return results;
  };
  const first = await run();
  const second = await run();
  first.forEach((outs, i) => {
    expectArraysClose(outs[0]!, float64Mean(inputs[i]!), { atol: 1e-6, rtol: 1e-5 });
    assertIdentical(outs, `step ${i + 1}`);
    assert.ok(bytes(second[i]![0]!).equals(bytes(outs[0]!)), `step ${i + 1}: a rerun gave other bytes`);
  });
});

/** The expected merge: per row, the float64 sum over workers divided by the world. */
function expectedRowsMean(grads: SparseRowGrad[], world: number, dim: number): Map<number, number[]> {
  const m = new Map<number, number[]>();
  for (const g of grads) {
    g.rows.forEach((row, i) => {
      const acc = m.get(row) ?? new Array<number>(dim).fill(0);
      for (let k = 0; k < dim; k++) acc[k]! += g.values[i * dim + k]!;
      m.set(row, acc);
    });
  }
  for (const acc of m.values()) for (let k = 0; k < dim; k++) acc[k]! /= world;
  return m;
}

function rowGrad(rng: Rng, rows: number[], dim: number): SparseRowGrad {
  return { rows: Int32Array.from(rows), values: randomGrad(rng, rows.length * dim) };
}

test('all-gather rows: overlapping, disjoint and empty row sets merge to the sorted mean, identical everywhere', async (t) => {
  const rng = new Rng(9);
  const dim = 3;
  for (const world of [1, 2, 3, 4]) {
    const ring = await startTestRing(t, world, { chunkBytes: 16, timeoutMs: 5000 });
    // Table 0 overlaps (every worker has rows 5 and 7, unsorted); table 1 is disjoint per worker;
    // table 2 is empty on every worker; table 3 is empty on rank 0 only.
    const perRank = Array.from({ length: world }, (_, r) => [
      rowGrad(rng, [7, 100 + r, 5, r], dim),
      rowGrad(rng, [1000 * (r + 1), 1000 * (r + 1) + 1], dim),
      rowGrad(rng, [], dim),
      rowGrad(rng, r === 0 ? [] : [r * 3, 2], 2),
    ]);
    const outs = await Promise.all(ring.reducers.map((red, r) => red.allGatherRowsMean(perRank[r]!, 4)));
    for (let table = 0; table < 4; table++) {
      const d = table === 3 ? 2 : dim;
      const expected = expectedRowsMean(
        perRank.map((g) => g[table]!),
        world,
        d,
      );
      const rows = [...expected.keys()].sort((a, b) => a - b);
      for (const out of outs) {
        assert.deepEqual(Array.from(out[table]!.rows), rows, `world ${world} table ${table} rows`);
        expectArraysClose(
          out[table]!.values,
          rows.flatMap((row) => expected.get(row)!),
          { atol: 1e-6, rtol: 1e-5 },
        );
        assert.ok(bytes(out[table]!.values).equals(bytes(outs[0]![table]!.values)), `world ${world} table ${table}: values differ across workers`);
      }
    }
    await ring.close();
  }
});

test('all-gather rows: values that do not split into rows are refused before anything is sent', async (t) => {
  const ring = await startTestRing(t, 2, { timeoutMs: 2000 });
  await assert.rejects(
    ring.reducers[0]!.allGatherRowsMean([{ rows: Int32Array.from([1, 2]), values: new Float32Array(3) }], 1),
    /3 values do not split into 2 rows/,
  );
});

test('a peer that never takes part: the all-reduce rejects after the timeout, naming the peer and the phase', async (t) => {
  const ring = await startTestRing(t, 2, { timeoutMs: 300 });
  const t0 = performance.now();
  await assert.rejects(ring.reducers[0]!.allReduceMean(new Float32Array(10), 1), (err: Error) => {
    assert.match(err.message, /nothing arrived for 300 ms/);
    assert.match(err.message, new RegExp(`phase 0 \\(reduce-scatter 1/1\\) from rank 1 \\(${ring.peers[1]}\\)`));
    return true;
  });
  const elapsed = performance.now() - t0;
  assert.ok(elapsed >= 290 && elapsed < 1500, `rejected after ${elapsed} ms`);
});

test('a peer closed mid-all-reduce: the others reject within the timeout, naming a peer and a phase', async (t) => {
  const world = 4;
  const timeoutMs = 2000;
  const ring = await startTestRing(t, world, { timeoutMs, chunkBytes: 4096, windowBytes: 8192 });
  const rng = new Rng(3);
  const t0 = performance.now();
  // Ranks 0, 1 and 3 start; rank 2 takes part too but is closed (server and reducer) while data is moving.
  const running = [0, 1, 2, 3].map((r) => ring.reducers[r]!.allReduceMean(randomGrad(rng, 2 ** 20), 1));
  setTimeout(() => {
    ring.reducers[2]!.close();
    void ring.servers[2]!.close();
  }, 20);
  const results = await Promise.allSettled(running);
  const elapsed = performance.now() - t0;
  for (const r of [0, 1, 3]) {
    const result = results[r]!;
    assert.equal(result.status, 'rejected', `rank ${r} did not reject`);
    const message = (result as PromiseRejectedResult).reason.message as string;
    assert.match(message, /rank \d \(127\.0\.0\.1:\d+\)/, `rank ${r}: ${message}`);
    assert.match(message, /phase \d/, `rank ${r}: ${message}`);
  }
  assert.ok(elapsed < timeoutMs + 1000, `the others took ${elapsed} ms to reject`);
});

test('abort() rejects an in-flight all-reduce at once; the next generation works', async (t) => {
  const ring = await startTestRing(t, 2, { timeoutMs: 10_000 });
  const t0 = performance.now();
  const pending = ring.reducers[0]!.allReduceMean(new Float32Array(100), 1);
  setTimeout(() => ring.reducers[0]!.abort('generation 2 formed'), 50);
  await assert.rejects(pending, /aborted \(generation 2 formed\) while waiting for phase 0 \(reduce-scatter 1\/1\) from rank 1/);
  assert.ok(performance.now() - t0 < 1000);
  await assert.rejects(ring.reducers[0]!.allReduceMean(new Float32Array(1), 2), /aborted \(generation 2 formed\)/);

  ring.reducers.forEach((r, rank) => r.setTopology({ generation: 2, rank, world: 2, peers: ring.peers }));
  const outs = await Promise.all(ring.reducers.map((r, rank) => r.allReduceMean(Float32Array.from([rank, 10 * rank]), 1)));
  for (const out of outs) assert.deepEqual(Array.from(out), [0.5, 5]);
});

test('several collectives of one op in one step do not mix: all-reduce twice, all-gather twice', async (t) => {
  const ring = await startTestRing(t, 3, { timeoutMs: 5000 });
  const step = 4;
  const run = <T>(f: (rank: number) => Promise<T>) => Promise.all([0, 1, 2].map(f));
  const a = await run((r) => ring.reducers[r]!.allReduceMean(Float32Array.from([r, 1]), step));
  const b = await run((r) => ring.reducers[r]!.allReduceMean(Float32Array.from([10 * r, 2, 3]), step));
  const c = await run((r) => ring.reducers[r]!.allGatherRowsMean([{ rows: Int32Array.from([r]), values: Float32Array.from([3]) }], step));
  const d = await run((r) => ring.reducers[r]!.allGatherRowsMean([{ rows: Int32Array.from([7]), values: Float32Array.from([r]) }], step));
  for (let r = 0; r < 3; r++) {
    assert.deepEqual(Array.from(a[r]!), [1, 1]);
    assert.deepEqual(Array.from(b[r]!), [10, 2, 3]);
    assert.deepEqual(
      [Array.from(c[r]![0]!.rows), Array.from(c[r]![0]!.values)],
      [
        [0, 1, 2],
        [1, 1, 1],
      ],
    );
    assert.deepEqual([Array.from(d[r]![0]!.rows), Array.from(d[r]![0]!.values)], [[7], [1]]);
  }
  assert.equal(
    Object.values(ring.servers[0]!.refused).reduce((x, y) => x + y, 0),
    0,
  );
});

test('all-to-all over the ring: each worker gets what each other addressed to it; a block that does not match its header is refused', async (t) => {
  const world = 3;
  const ring = await startTestRing(t, world, { timeoutMs: 10_000 });
  // Rank s sends rank d (s + 1)·(d + 2) ids valued 100s + d and half as many values.
  const block = (s: number, d: number) => ({
    rows: Int32Array.from({ length: (s + 1) * (d + 2) }, () => 100 * s + d),
    values: Float32Array.from({ length: ((s + 1) * (d + 2)) >> 1 }, () => s - d),
  });
  const outs = await Promise.all(
    ring.reducers.map((r, s) =>
      allToAllBlocks(
        r,
        Array.from({ length: world }, (_, d) => block(s, d)),
        s,
        1,
      ),
    ),
  );
  outs.forEach((got, d) =>
    got.forEach((b, s) => assert.deepEqual([Array.from(b.rows), Array.from(b.values)], [Array.from(block(s, d).rows), Array.from(block(s, d).values)])),
  );
  // A sender whose header claims more than it sent: every receiver refuses it.
  const forged = ring.reducers.map((r, s) =>
    s === 1
      ? r.allGatherBlocks({ rows: Int32Array.of(5, 0, 0, 0, 0, 0), values: new Float32Array(0) }, 2).then(() => [])
      : allToAllBlocks(r, [block(s, 0), block(s, 1), block(s, 2)], s, 2),
  );
  const settled = await Promise.allSettled(forged);
  settled.forEach((r, s) => {
    if (s === 1) return assert.equal(r.status, 'fulfilled');
    assert.equal(r.status, 'rejected');
    assert.match(String((r as PromiseRejectedResult).reason), /all-to-all: rank 1's blocks do not match their header/);
  });
});
