import test from 'node:test';
import assert from 'node:assert/strict';
import type { Chunk__Output } from '../../proto/generated/infobound/v1/Chunk.js';
import { CollectiveInbox, type ChunkSource, type Refusal, type SlotKey } from './collective-inbox.js';

/** A call that records its acknowledgements and refusal. */
function source(): ChunkSource & { acks: number[]; refusal?: Refusal } {
  const s: ChunkSource & { acks: number[]; refusal?: Refusal } = {
    acks: [],
    ack: (c) => s.acks.push(c.offset),
    refuse: (r) => (s.refusal = r),
  };
  return s;
}

/** Rank 1 of 2 receives segment 0 (length 2 here) from rank 0 in reduce-scatter phase 0. */
function chunk(over: Partial<Chunk__Output> = {}): Chunk__Output {
  return {
    generation: 1,
    step: 5,
    op: 'ALLREDUCE_SUM',
    tensor: 0,
    phase: 0,
    segment: 0,
    offset: 0,
    segment_length: 2,
    from_rank: 0,
    dtype: 'FLOAT32',
    data: Buffer.alloc(4),
    ...over,
  };
}

const KEY: SlotKey = { step: 5, op: 'ALLREDUCE_SUM', tensor: 0, phase: 0, dtype: 'FLOAT32' };

function ready(): CollectiveInbox {
  const inbox = new CollectiveInbox({ maxBufferedBytes: 16 });
  inbox.setTopology({ generation: 1, rank: 1, world: 2 });
  return inbox;
}

test('inbox: early chunks wait (counted in bufferedBytes), are taken in order and acknowledged when taken', async () => {
  const inbox = ready();
  const src = source();
  assert.equal(inbox.offer(chunk(), src).kind, 'accepted');
  assert.equal(inbox.offer(chunk({ offset: 1 }), src).kind, 'accepted');
  assert.equal(inbox.bufferedBytes, 8);
  assert.deepEqual(src.acks, []);
  assert.equal((await inbox.take(KEY)).offset, 0);
  assert.equal((await inbox.take(KEY)).offset, 1);
  assert.deepEqual(src.acks, [0, 1]);
  assert.equal(inbox.bufferedBytes, 0);
  // The segment is complete: the same chunk again is a replay.
  const replay = inbox.offer(chunk(), src);
  assert.equal(replay.kind === 'refused' && replay.refusal.reason, 'step');
});

test('inbox: a waiting take gets the chunk directly; fail() rejects waits until the next step begins', async () => {
  const inbox = ready();
  const src = source();
  const pending = inbox.take(KEY);
  inbox.offer(chunk(), src);
  assert.equal((await pending).offset, 0);
  const waiting = inbox.take(KEY);
  inbox.fail(new Error('deadline'));
  await assert.rejects(waiting, /deadline/);
  await assert.rejects(inbox.take({ ...KEY, phase: 1 }), /deadline/);
  inbox.beginStep(6);
  const next = inbox.take({ ...KEY, step: 6 });
  inbox.offer(chunk({ step: 6 }), src);
  assert.equal((await next).step, 6);
});

test('inbox: a new step drops what is left of earlier ones; the byte bound refuses the excess; a new generation drops everything', async () => {
  const inbox = ready();
  const src = source();
  inbox.offer(chunk({ step: 7, segment_length: 100, data: Buffer.alloc(12) }), src);
  const over = inbox.offer(chunk({ step: 7, segment_length: 100, offset: 3, data: Buffer.alloc(8) }), src);
  assert.equal(over.kind === 'refused' && over.refusal.reason, 'overflow');
  inbox.offer(chunk({ step: 3 }), src);
  assert.equal(inbox.bufferedBytes, 16);
  inbox.beginStep(5);
  assert.equal(inbox.bufferedBytes, 12);
  const stale = inbox.offer(chunk({ step: 4 }), src);
  assert.equal(stale.kind === 'refused' && stale.refusal.reason, 'step');
  inbox.setTopology({ generation: 2, rank: 1, world: 2 });
  assert.equal(inbox.bufferedBytes, 0);
  assert.equal(inbox.offer(chunk({ generation: 3 }), src).kind, 'newer');
  assert.deepEqual(
    { ...inbox.refused },
    { credential: 0, generation: 0, step: 1, sender: 0, op: 0, phase: 0, dtype: 0, segment: 0, offset: 0, size: 0, overflow: 1, oversized: 0, frame: 0 },
  );
});

test("inbox: when the predecessor's call ends, a take with nothing buffered rejects; a new call's chunk lifts it", async () => {
  const inbox = ready();
  const first = source();
  inbox.offer(chunk(), first);
  const waiting = inbox.take({ ...KEY, phase: 1 });
  inbox.sourceClosed(first, 'was cancelled');
  await assert.rejects(waiting, /the stream from ring predecessor rank 0 was cancelled/);
  assert.equal((await inbox.take(KEY)).offset, 0, 'what arrived before the end is still there');
  await assert.rejects(inbox.take(KEY), /was cancelled/);
  const second = source();
  inbox.offer(chunk({ offset: 1 }), second);
  assert.equal((await inbox.take(KEY)).offset, 1);
  // A call that never delivered (an impostor, or a refused one) ending changes nothing.
  inbox.sourceClosed(source(), 'closed');
  const next = inbox.take({ ...KEY, phase: 1 });
  inbox.offer(chunk({ phase: 1, segment: 1 }), second);
  assert.equal((await next).phase, 1);
});
