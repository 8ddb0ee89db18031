import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { PeerService } from '../../common/proto.js';
import { Rng } from '../../common/random.js';
import { FrameReader, FrameType, MAX_REFUSAL_BYTES, chunkHeader, helloFrame, readAckCount, readRefusalCode, type Frame } from '../../proto/data-link-frame.js';
import type { Chunk } from '../../proto/generated/infobound/v1/Chunk.js';
import type { DataLinkTicket__Output } from '../../proto/generated/infobound/v1/DataLinkTicket.js';
import type { PeerClient } from '../../proto/generated/infobound/v1/Peer.js';
import { recordingPeer } from '../../testing/recording-peer.js';
import { floats, VALID_CHUNK as VALID } from '../../testing/peer-chunks.js';
import { startTestRing } from '../../testing/ring-test-helpers.js';
import { MAX_PEER_REQUEST_BYTES, PEER_CREDENTIAL_METADATA, PeerServer } from './peer-server.js';
import { RingReducer } from './ring-reducer.js';

type After = { after: (fn: () => void | Promise<void>) => void };

function peerClient(t: After, address: string): PeerClient {
  const c = new PeerService(address, grpc.credentials.createInsecure()) as unknown as PeerClient;
  t.after(() => c.close());
  return c;
}

function openDataLink(client: PeerClient, credential: string | null, generation = 3, fromRank = 0): Promise<DataLinkTicket__Output> {
  const metadata = new grpc.Metadata();
  if (credential !== null) metadata.set(PEER_CREDENTIAL_METADATA, credential);
  return new Promise((resolve, reject) =>
    client.OpenDataLink({ generation, from_rank: fromRank }, metadata, { deadline: Date.now() + 5000 }, (err, ticket) =>
      err ? reject(err) : resolve(ticket!),
    ),
  );
}

/** A hand-made data-plane connection: what it receives, and when the receiver closed it. */
interface RawLink {
  socket: Socket;
  frames: Frame[];
  closed: Promise<void>;
  /** The refusal the receiver ended the connection with, once closed. */
  refusal(): { code: number; details: string } | undefined;
  acks(): number;
}

async function rawLink(t: After, port: number): Promise<RawLink> {
  const socket = connect({ host: '127.0.0.1', port });
  t.after(() => void socket.destroy());
  await new Promise((resolve) => socket.once('connect', resolve));
  const frames: Frame[] = [];
  const reader = new FrameReader({ [FrameType.ACK]: 0, [FrameType.REFUSAL]: MAX_REFUSAL_BYTES });
  socket.on('data', (d: Buffer) =>
    assert.equal(
      reader.push(d, (f) => frames.push(f)),
      null,
    ),
  );
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    socket,
    frames,
    closed,
    refusal: () => {
      const f = frames.find((x) => x.type === FrameType.REFUSAL);
      return f && { code: readRefusalCode(f.head), details: f.payload.toString() };
    },
    acks: () => frames.filter((f) => f.type === FrameType.ACK).reduce((n, f) => n + readAckCount(f.head), 0),
  };
}

function send(link: RawLink, chunk: Chunk): void {
  const data = chunk.data as Buffer;
  link.socket.write(Buffer.concat([chunkHeader(chunk, data.length), data]));
}

/** Rank 1 of a world of 2 in generation 3, requiring the credential 'job-credential'; rank 0 is unreachable. */
async function rankOne(t: After, options: Parameters<typeof PeerServer.start>[0] = {}): Promise<{ server: PeerServer; reducer: RingReducer }> {
  const server = await PeerServer.start({ requireCredential: true, closeGraceMs: 100, ...options });
  t.after(() => server.close());
  const reducer = new RingReducer(server, { timeoutMs: 3000 });
  t.after(() => reducer.close());
  reducer.setTopology({ generation: 3, rank: 1, world: 2, peers: ['127.0.0.1:1', server.address], credential: 'job-credential' });
  return { server, reducer };
}

function sha256(a: Float32Array | Int32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex');
}

test('the ring over the data plane gives the bytes it gives over gRPC (all-reduce, all-gather), and really uses the data plane', async (t) => {
  const world = 3;
  const rng = new Rng(11);
  const grads = Array.from({ length: world }, () => Float32Array.from({ length: 100_003 }, () => rng.next() * 2 - 1));
  const rows = Array.from({ length: world }, (_, r) => ({
    rows: Int32Array.from([r, 7, 1000 + r]),
    values: Float32Array.from({ length: 3 * 5 }, () => rng.next()),
  }));
  const outcome: Record<string, string[]> = {};
  for (const transport of ['data-plane', 'grpc'] as const) {
    // Small chunks and window: many frames per phase, and the window must be refilled by acknowledgements.
    const ring = await startTestRing(t, world, { timeoutMs: 10_000, chunkBytes: 4096, windowBytes: 16_384, transport });
    const reduced = await Promise.all(ring.reducers.map((r, rank) => r.allReduceMean(Float32Array.from(grads[rank]!), 1)));
    const gathered = await Promise.all(ring.reducers.map((r, rank) => r.allGatherRowsMean([rows[rank]!], 2)));
    const summed = await Promise.all(ring.reducers.map((r, rank) => r.reduceScatterSum(Float32Array.from(grads[rank]!), 3)));
    const same = ring.reducers.map((_, rank) => [sha256(reduced[rank]!), sha256(gathered[rank]![0]!.rows), sha256(gathered[rank]![0]!.values)].join(' '));
    assert.equal(new Set(same).size, 1, `${transport}: every worker ends with the same bytes`);
    // Each worker's reduce-scatter segment is its own.
    outcome[transport] = [...same, ...summed.map(sha256)];
    const admitted = ring.servers.map((s) => s.dataLinksAdmitted);
    assert.deepEqual(admitted, transport === 'data-plane' ? [1, 1, 1] : [0, 0, 0], `${transport}: data-plane connections, one per receiver`);
    assert.equal(
      ring.servers.reduce((n, s) => n + Object.values(s.refused).reduce((a, b) => a + b, 0), 0),
      0,
    );
    await ring.close();
  }
  assert.deepEqual(outcome['data-plane'], outcome.grpc);
  // And the mean is the mean (element 0, float64 reference within float32 rounding).
  const first = grads.reduce((s, g) => s + g[0]!, 0) / world;
  const out = await (async () => {
    const ring = await startTestRing(t, world, { timeoutMs: 10_000 });
    return (await Promise.all(ring.reducers.map((r, rank) => r.allReduceMean(Float32Array.from(grads[rank]!), 1))))[0]!;
  })();
  assert.ok(Math.abs(out[0]! - first) < 1e-6);
});

test('a data-plane connection needs a fresh ticket from an authenticated OpenDataLink; its chunks must be the ticket’s sender and generation', async (t) => {
  const { server } = await rankOne(t);
  const client = peerClient(t, server.address);
  await assert.rejects(openDataLink(client, null), (err: grpc.ServiceError) => err.code === grpc.status.UNAUTHENTICATED);
  await assert.rejects(openDataLink(client, 'guess'), (err: grpc.ServiceError) => err.code === grpc.status.UNAUTHENTICATED);
  assert.equal(server.refused.credential, 2);

  // A made-up ticket: refused with UNAUTHENTICATED, counted, closed.
  const forged = await rawLink(t, server.dataPort!);
  forged.socket.write(helloFrame(Buffer.alloc(32, 1)));
  send(forged, VALID);
  await forged.closed;
  assert.equal(forged.refusal()?.code, grpc.status.UNAUTHENTICATED);
  assert.match(forged.refusal()!.details, /without a valid ticket/);
  assert.equal(server.refused.credential, 3);
  assert.equal(server.refused.frame, 0, 'what followed the refused ticket is not judged again');

  // A real ticket admits one connection; the same ticket again is refused.
  const offer = await openDataLink(client, 'job-credential');
  assert.equal(offer.port, server.dataPort);
  const member = await rawLink(t, offer.port);
  member.socket.write(helloFrame(offer.ticket));
  send(member, VALID);
  const replay = await rawLink(t, offer.port);
  replay.socket.write(helloFrame(offer.ticket));
  await replay.closed;
  assert.equal(replay.refusal()?.code, grpc.status.UNAUTHENTICATED);
  assert.equal(server.refused.credential, 4);
  assert.equal(server.dataLinksAdmitted, 1);

  // Chunks of another sender or generation than the ticket's are refused on the data link itself.
  for (const [change, code, reason] of [
    [{ from_rank: 1 }, grpc.status.PERMISSION_DENIED, 'sender'],
    [{ generation: 4 }, grpc.status.FAILED_PRECONDITION, 'generation'],
  ] as const) {
    const ticket = await openDataLink(client, 'job-credential');
    const link = await rawLink(t, ticket.port);
    link.socket.write(helloFrame(ticket.ticket));
    const before = server.refused[reason];
    send(link, { ...VALID, ...change });
    await link.closed;
    assert.equal(link.refusal()?.code, code, link.refusal()?.details);
    assert.match(link.refusal()!.details, /on a data link opened for/);
    assert.equal(server.refused[reason], before + 1);
  }
  assert.equal(member.socket.destroyed, false, 'the member’s connection is not disturbed by the others');
});

test('bad frames on an admitted data link are refused and counted, and never reach the reducer', async (t) => {
  const { server } = await rankOne(t);
  const client = peerClient(t, server.address);
  const admitted = async (): Promise<RawLink> => {
    const ticket = await openDataLink(client, 'job-credential');
    const link = await rawLink(t, ticket.port);
    link.socket.write(helloFrame(ticket.ticket));
    return link;
  };
  const oversized = await admitted();
  const before = server.refused.oversized;
  // Only the header: the declared length alone gets it refused.
  oversized.socket.write(chunkHeader(VALID, MAX_PEER_REQUEST_BYTES + 4));
  await oversized.closed;
  assert.equal(oversized.refusal()?.code, grpc.status.RESOURCE_EXHAUSTED);
  assert.equal(server.refused.oversized, before + 1);

  const wrongType = await admitted();
  wrongType.socket.write(helloFrame(Buffer.alloc(32)));
  await wrongType.closed;
  assert.equal(wrongType.refusal()?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(wrongType.refusal()!.details, /not expected here/);
  assert.equal(server.refused.frame, 1);

  // A chunk that does not fit the ring schedule: the inbox's own checks, as for a Collective call.
  for (const [change, reason] of [
    [{ dtype: 'INT32' }, 'dtype'],
    [{ data: Buffer.alloc(3) }, 'size'],
    [{ segment: 1 }, 'segment'],
  ] as const) {
    const link = await admitted();
    const n = server.refused[reason];
    send(link, { ...VALID, ...change } as Chunk);
    await link.closed;
    assert.equal(link.refusal()?.code, grpc.status.INVALID_ARGUMENT, link.refusal()?.details);
    assert.equal(server.refused[reason], n + 1, reason);
  }
  assert.equal(server.dataLinksAdmitted, 5);
});

test('a connection that presents no ticket is closed after the ticket lifetime', async (t) => {
  const { server } = await rankOne(t, { dataTicketTtlMs: 200 });
  const idle = await rawLink(t, server.dataPort!);
  await idle.closed;
  assert.equal(idle.frames.length, 0);
  // A ticket not used within its lifetime is void.
  const offer = await openDataLink(peerClient(t, server.address), 'job-credential');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const late = await rawLink(t, offer.port);
  late.socket.write(helloFrame(offer.ticket));
  await late.closed;
  assert.equal(late.refusal()?.code, grpc.status.UNAUTHENTICATED);
});

test('chunks taken by the reducer are acknowledged on the data link; a peer without a data plane gets a Collective call', async (t) => {
  // Rank 0: a real PeerServer with the data plane off (OpenDataLink answers UNIMPLEMENTED), so rank 1 falls back to gRPC to reach it.
  const rank0 = await PeerServer.start({ dataPlane: false, closeGraceMs: 100 });
  t.after(() => rank0.close());
  const reducer0 = new RingReducer(rank0, { timeoutMs: 5000 });
  t.after(() => reducer0.close());
  const rank1 = await PeerServer.start({ closeGraceMs: 100 });
  t.after(() => rank1.close());
  const reducer1 = new RingReducer(rank1, { timeoutMs: 5000 });
  t.after(() => reducer1.close());
  const peers = [rank0.address, rank1.address];
  reducer0.setTopology({ generation: 3, rank: 0, world: 2, peers });
  reducer1.setTopology({ generation: 3, rank: 1, world: 2, peers });
  assert.equal(rank0.dataPort, null);
  const [a, b] = await Promise.all([reducer0.allReduceMean(Float32Array.from([1, 2, 3, 4]), 1), reducer1.allReduceMean(Float32Array.from([3, 4, 5, 6]), 1)]);
  assert.deepEqual(Array.from(a), [2, 3, 4, 5]);
  assert.deepEqual(Array.from(b), [2, 3, 4, 5]);
  assert.equal(rank1.dataLinksAdmitted, 1, 'rank 0 reached rank 1 over the data plane');
  assert.equal(rank0.dataLinksAdmitted, 0, 'rank 1 reached rank 0 over gRPC');

  // A hand-made rank 0 sends over the data plane; rank 1 answers to a recording stub (over gRPC).
  const stub = await recordingPeer(t);
  const server = await PeerServer.start({ closeGraceMs: 100 });
  t.after(() => server.close());
  const reducer = new RingReducer(server, { timeoutMs: 5000 });
  t.after(() => reducer.close());
  reducer.setTopology({ generation: 3, rank: 1, world: 2, peers: [stub.address, server.address] });
  const ticket = await openDataLink(peerClient(t, server.address), null);
  const link = await rawLink(t, ticket.port);
  link.socket.write(helloFrame(ticket.ticket));
  const head = { ...VALID, segment_length: 2 };
  send(link, { ...head, phase: 0, segment: 0, data: floats(10) });
  send(link, { ...head, phase: 0, segment: 0, offset: 1, data: floats(20) });
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(link.acks(), 0, 'nothing is acknowledged before the reducer takes it');
  const result = reducer.allReduceMean(Float32Array.from([1, 2, 3, 4]), 1);
  // As a real predecessor would: segment 1's final values only once rank 1's own part of it went out.
  for (let i = 0; i < 100 && stub.received.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  send(link, { ...head, phase: 1, segment: 1, data: floats(-1, -2) });
  assert.deepEqual(Array.from(await result), [5.5, 11, -1, -2]);
  // The last ACK was written as the reducer took the chunk: it may still be on its way.
  for (let i = 0; i < 100 && link.acks() < 3; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(link.acks(), 3);
  assert.deepEqual(
    stub.received.map((c) => [c.phase, c.segment, c.offset, Array.from(new Float32Array(new Uint8Array(c.data).buffer))]),
    [
      [0, 1, 0, [3, 4]],
      [1, 0, 0, [5.5]],
      [1, 0, 1, [11]],
    ],
  );
});
