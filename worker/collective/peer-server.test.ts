import test from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { PeerService } from '../../common/proto.js';
import type { Chunk } from '../../proto/generated/infobound/v1/Chunk.js';
import type { ChunkAck__Output } from '../../proto/generated/infobound/v1/ChunkAck.js';
import type { PeerClient } from '../../proto/generated/infobound/v1/Peer.js';
import { healthClient } from '../../common/grpc-health-client.js';
import { fetchState } from './fetch-state.js';
import { MAX_PEER_REQUEST_BYTES, PEER_CREDENTIAL_METADATA, PEER_HEALTH_SERVICES, PeerServer } from './peer-server.js';
import { RingReducer } from './ring-reducer.js';
import { floats, VALID_CHUNK as VALID } from '../../testing/peer-chunks.js';
import { startTestRing } from '../../testing/ring-test-helpers.js';
import { recordingPeer } from '../../testing/recording-peer.js';

/** What a hand-made Collective call saw: its acknowledgements and, once it ended, its status. */
interface CallOutcome {
  acks: ChunkAck__Output[];
  code?: grpc.status;
  details?: string;
}

/** Writes chunks on a fresh Collective call, then waits up to `ms` for the call to end; the call is cancelled after. */
async function sendChunks(client: PeerClient, chunks: Chunk[], ms = 2000, metadata = new grpc.Metadata()): Promise<CallOutcome> {
  const call = client.Collective(metadata);
  const outcome: CallOutcome = { acks: [] };
  call.on('data', (ack: ChunkAck__Output) => outcome.acks.push(ack));
  const ended = new Promise<void>((resolve) => {
    call.on('error', (err: grpc.ServiceError) => {
      outcome.code = err.code;
      outcome.details = err.details;
      resolve();
    });
    call.on('status', () => resolve());
  });
  for (const c of chunks) call.write(c);
  await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, ms))]);
  call.cancel();
  return outcome;
}

function client(t: { after: (fn: () => void) => void }, address: string): PeerClient {
  const c = new PeerService(address, grpc.credentials.createInsecure()) as unknown as PeerClient;
  t.after(() => c.close());
  return c;
}

test('bad chunks are refused with the right status and counted; the server keeps working', async (t) => {
  const ring = await startTestRing(t, 2, { timeoutMs: 5000 }, { generation: 3, server: { maxBufferedBytes: 64 } });
  const server = ring.servers[1]!;
  const hand = client(t, server.address);
  const cases: { change: Partial<Chunk>; code: grpc.status; reason: keyof PeerServer['refused']; details: RegExp }[] = [
    { change: { generation: 2 }, code: grpc.status.FAILED_PRECONDITION, reason: 'generation', details: /generation 2, the receiver is in generation 3/ },
    { change: { dtype: 'INT32' }, code: grpc.status.INVALID_ARGUMENT, reason: 'dtype', details: /dtype INT32/ },
    { change: { from_rank: 1 }, code: grpc.status.PERMISSION_DENIED, reason: 'sender', details: /rank 1 is not the ring predecessor/ },
    { change: { op: 'OP_UNSPECIFIED' }, code: grpc.status.INVALID_ARGUMENT, reason: 'op', details: /unknown collective op/ },
    { change: { phase: 2 }, code: grpc.status.INVALID_ARGUMENT, reason: 'phase', details: /phases 0\.\.1/ },
    { change: { segment: 1 }, code: grpc.status.INVALID_ARGUMENT, reason: 'segment', details: /moves segment 0/ },
    { change: { offset: 1 }, code: grpc.status.INVALID_ARGUMENT, reason: 'offset', details: /offset 1, expected 0/ },
    { change: { data: Buffer.alloc(3) }, code: grpc.status.INVALID_ARGUMENT, reason: 'size', details: /not whole 4-byte elements/ },
    { change: { data: floats(1, 2) }, code: grpc.status.INVALID_ARGUMENT, reason: 'size', details: /run past/ },
    // Over the size limit: refused unparsed, and counted (gRPC's own limit would refuse it uncounted).
    {
      change: { data: Buffer.alloc(MAX_PEER_REQUEST_BYTES + 4) },
      code: grpc.status.RESOURCE_EXHAUSTED,
      reason: 'oversized',
      details: new RegExp(`over the limit of ${MAX_PEER_REQUEST_BYTES}$`),
    },
  ];
  for (const { change, code, reason, details } of cases) {
    const before = server.refused[reason];
    const outcome = await sendChunks(hand, [{ ...VALID, ...change }]);
    assert.equal(outcome.code, code, `${JSON.stringify(change)}: ${outcome.details}`);
    assert.match(outcome.details!, details);
    assert.equal(server.refused[reason], before + 1, reason);
  }

  // The ring itself still works, and afterwards a chunk of the finished step is stale.
  const outs = await Promise.all(ring.reducers.map((r, rank) => r.allReduceMean(Float32Array.from([rank, 2 * rank, 4]), 1)));
  for (const out of outs) assert.deepEqual(Array.from(out), [0.5, 1, 4]);
  await Promise.all(ring.reducers.map((r, rank) => r.allReduceMean(Float32Array.from([rank]), 2)));
  const stale = await sendChunks(hand, [VALID]);
  assert.equal(stale.code, grpc.status.FAILED_PRECONDITION, stale.details);
  assert.match(stale.details!, /the receiver is at step 2/);
  assert.equal(server.refused.step, 1);

  // Early chunks (a later step) wait in the inbox within its byte bound (64 here); the chunk beyond it is refused.
  const early = { ...VALID, step: 9, segment_length: 100 };
  const overflow = await sendChunks(hand, [
    { ...early, data: Buffer.alloc(64) },
    { ...early, offset: 16, data: Buffer.alloc(4) },
  ]);
  assert.equal(overflow.code, grpc.status.RESOURCE_EXHAUSTED, overflow.details);
  assert.match(overflow.details!, /64 bytes already buffered \(limit 64\)/);
  assert.equal(server.refused.overflow, 1);
  const total = Object.values(server.refused).reduce((a, b) => a + b, 0);
  assert.equal(total, cases.length + 2);
  assert.equal(
    Object.values(ring.servers[0]!.refused).reduce((a, b) => a + b, 0),
    0,
  );
});

test('the wire protocol, against a hand-made rank 0: chunks, segments, acknowledgements', async (t) => {
  // Rank 1 is a real PeerServer + RingReducer; rank 0 is a hand-made client (sending) and a recording service (receiving).
  const server = await PeerServer.start();
  t.after(() => server.close());
  const rank0 = await recordingPeer(t);
  const reducer = new RingReducer(server, { timeoutMs: 3000 });
  t.after(() => reducer.close());
  reducer.setTopology({ generation: 3, rank: 1, world: 2, peers: [rank0.address, server.address] });
  const result = reducer.allReduceMean(Float32Array.from([1, 2, 3, 4]), 1);

  // Rank 1 receives segment 0 (elements 0..1) in reduce-scatter and segment 1 (elements 2..3) in all-gather.
  const head = { ...VALID, step: 1, segment_length: 2 };
  const call = client(t, server.address).Collective();
  const acks: ChunkAck__Output[] = [];
  call.on('data', (a: ChunkAck__Output) => acks.push(a));
  call.on('error', () => {});
  call.write({ ...head, phase: 0, segment: 0, data: floats(10) });
  call.write({ ...head, phase: 0, segment: 0, offset: 1, data: floats(20) });
  call.write({ ...head, phase: 1, segment: 1, data: floats(-1, -2) });
  assert.deepEqual(Array.from(await result), [5.5, 11, -1, -2]);
  call.end();

  assert.deepEqual(
    acks.map((a) => [a.step, a.phase, a.offset]),
    [
      [1, 0, 0],
      [1, 0, 1],
      [1, 1, 0],
    ],
  );
  const sent = rank0.received.map((c) => ({
    phase: c.phase,
    segment: c.segment,
    offset: c.offset,
    len: c.segment_length,
    from: c.from_rank,
    data: Array.from(new Float32Array(new Uint8Array(c.data).buffer)),
  }));
  assert.deepEqual(sent, [
    { phase: 0, segment: 1, offset: 0, len: 2, from: 1, data: [3, 4] },
    { phase: 1, segment: 0, offset: 0, len: 2, from: 1, data: [5.5] },
    { phase: 1, segment: 0, offset: 1, len: 2, from: 1, data: [11] },
  ]);
  assert.ok(rank0.received.every((c) => c.generation === 3 && c.step === 1 && c.op === 'ALLREDUCE_SUM' && c.dtype === 'FLOAT32'));
});

test('a chunk of a generation the receiver has not entered waits for it, then is refused if it never comes', async (t) => {
  const server = await PeerServer.start({ newerGenerationWaitMs: 300 });
  t.after(() => server.close());
  const rank0 = await recordingPeer(t);
  const reducer = new RingReducer(server, { timeoutMs: 3000 });
  t.after(() => reducer.close());
  const topology = (generation: number) => ({ generation, rank: 1, world: 2, peers: [rank0.address, server.address] });
  reducer.setTopology(topology(2));
  const hand = client(t, server.address);

  // Generation 3 arrives before the reducer enters it: held, then accepted and reduced.
  const early = sendChunks(
    hand,
    [
      { ...VALID, generation: 3, segment_length: 1 },
      { ...VALID, generation: 3, phase: 1, segment: 1 },
    ],
    600,
  );
  await new Promise((resolve) => setTimeout(resolve, 100));
  reducer.setTopology(topology(3));
  assert.deepEqual(Array.from(await reducer.allReduceMean(Float32Array.from([3, 5]), 1)), [2, 1]);
  assert.equal((await early).code, undefined);

  // Generation 4 never comes: refused after newerGenerationWaitMs.
  const t0 = performance.now();
  const late = await sendChunks(hand, [{ ...VALID, generation: 4 }]);
  assert.equal(late.code, grpc.status.FAILED_PRECONDITION, late.details);
  assert.match(late.details!, /generation 4, the receiver is in generation 3/);
  assert.ok(performance.now() - t0 >= 290);
  assert.equal(server.refused.generation, 1);
});

test("health reports SERVING for the server and Peer until close (the workers' Kubernetes gRPC probes)", async () => {
  const server = await PeerServer.start();
  const client = healthClient(server.address);
  try {
    for (const service of PEER_HEALTH_SERVICES) assert.equal(await client.check(service, 2000), 'SERVING', `service "${service}"`);
    await assert.rejects(client.check('infobound.v1.Nothing', 2000), (err: grpc.ServiceError) => err.code === grpc.status.NOT_FOUND);
  } finally {
    client.close();
    await server.close();
  }
});

test('a worker’s Peer server serves members only: a call without the job’s peer credential is refused and counted', async (t) => {
  const server = await PeerServer.start({ requireCredential: true });
  t.after(() => server.close());
  server.setStateProvider(async () => ({ step: 4, data: Buffer.from('the model') }));
  const c = client(t, server.address);
  const fetch = (credential?: string) => fetchState(server.address, { workerId: 'thief', generation: 3, ...(credential !== undefined ? { credential } : {}) });
  // Before its membership the worker knows no credential: nothing is served.
  await assert.rejects(fetch('guess'), /UNAUTHENTICATED.*this peer has no membership yet|this peer has no membership yet/);
  server.setCredential('the-job-credential');
  await assert.rejects(fetch(), /peer credential/);
  await assert.rejects(fetch('guess'), /peer credential/);
  const stolen = await sendChunks(c, [VALID]);
  assert.equal(stolen.code, grpc.status.UNAUTHENTICATED);
  assert.match(stolen.details!, /without the job's peer credential \(x-infobound-peer\)$/);
  assert.equal(server.refused.credential, 4);
  // A member's calls carry it and are served.
  const state = await fetch('the-job-credential');
  assert.equal(state.data.toString(), 'the model');
  const metadata = new grpc.Metadata();
  metadata.set(PEER_CREDENTIAL_METADATA, 'the-job-credential');
  const member = await sendChunks(c, [VALID], 300, metadata);
  assert.notEqual(member.code, grpc.status.UNAUTHENTICATED, 'past the credential check (refused, if at all, for its generation)');
  assert.equal(server.refused.credential, 4);
});
