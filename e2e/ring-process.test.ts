import test from 'node:test';
import assert from 'node:assert/strict';
import { expectArraysClose } from '../testing/test-helpers.js';
import { fixtureGradient } from '../testing/ring-fixture.js';
import { RingFixtureClient } from '../testing/ring-fixture-client.js';

test('three worker processes all-reduce over gRPC to the same bytes; killing one makes the others reject within the timeout', async (t) => {
  const world = 3;
  const timeoutMs = 3000;
  const ring = await RingFixtureClient.start(world, { args: ['--timeout-ms', String(timeoutMs), '--chunk-bytes', String(256 * 1024)], replyTimeoutMs: 15_000 });
  t.after(() => ring.close());
  await ring.setTopology(1);

  const length = 1_000_003;
  const seed = 42;
  const inputs = Array.from({ length: world }, (_, r) => fixtureGradient(seed, r, length));
  const expected = new Float64Array(length);
  for (const g of inputs) for (let i = 0; i < length; i++) expected[i]! += g[i]! / world;
  const replies = await Promise.all([0, 1, 2].map((r) => ring.request(r, { cmd: 'allreduce', step: 1, length, seed, reps: 2 })));
  for (const reply of replies) assert.ok(reply.ok, reply.error);
  // Two repetitions: the second averages the (identical) means again, which leaves them unchanged up to rounding.
  expectArraysClose(replies[0]!.head!, expected.subarray(0, 4), { atol: 1e-6, rtol: 1e-5 });
  const expectedSum = expected.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(replies[0]!.sum! - expectedSum) < 1e-3, `sum ${replies[0]!.sum} vs ${expectedSum}`);
  assert.equal(new Set(replies.map((r) => r.sha256)).size, 1, 'results differ across processes');

  // Ranks 0 and 1 start step 3; rank 2 is killed instead (SIGKILL: its sockets just close).
  const t0 = performance.now();
  const pending = [0, 1].map((r) => ring.request(r, { cmd: 'allreduce', step: 3, length, seed }));
  setTimeout(() => ring.kill(2), 200);
  const failed = await Promise.all(pending);
  const elapsed = performance.now() - t0;
  const named = (rank: number) => new RegExp(`rank ${rank} \\(${ring.peers[rank]!.replace(/\./g, '\\.')}\\)`);
  for (const [r, reply] of failed.entries()) {
    assert.equal(reply.ok, false, `rank ${r} did not fail`);
    assert.match(reply.error!, /phase \d/, `rank ${r}: ${reply.error}`);
  }
  // Rank 0 receives from rank 2: it sees the dead peer itself. Rank 1 sends to rank 2, and may hear of
  // the failure first from rank 0, which cancels its stream to rank 1 as it fails.
  assert.match(failed[0]!.error!, named(2), failed[0]!.error);
  assert.match(failed[1]!.error!, new RegExp(`${named(2).source}|${named(0).source}`), failed[1]!.error);
  assert.ok(elapsed < timeoutMs + 1000, `took ${elapsed} ms`);
});
