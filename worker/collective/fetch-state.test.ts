import test from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { PeerService } from '../../common/proto.js';
import type { PeerClient } from '../../proto/generated/infobound/v1/Peer.js';
import type { StateChunk__Output } from '../../proto/generated/infobound/v1/StateChunk.js';
import { FetchStateError, fetchState } from './fetch-state.js';
import { PeerServer, STATE_CHUNK_BYTES } from './peer-server.js';
import { RingReducer } from './ring-reducer.js';

async function server(t: { after: (fn: () => Promise<void>) => void }): Promise<PeerServer> {
  const s = await PeerServer.start({ closeGraceMs: 100 });
  t.after(() => s.close());
  return s;
}

test('FetchState: a 5 MB state arrives whole, in 1 MiB pieces, with its step', async (t) => {
  const s = await server(t);
  const data = randomBytes(5_000_000);
  let calls = 0;
  s.setStateProvider(async () => {
    calls++;
    return { step: 1234, data };
  });
  const got = await fetchState(s.address, { workerId: 'w-new', generation: 0, timeoutMs: 5000 });
  assert.equal(got.step, 1234);
  assert.ok(got.data.equals(data));
  assert.equal(calls, 1);

  // The pieces on the wire, seen by a bare client.
  const client = new PeerService(s.address, grpc.credentials.createInsecure()) as unknown as PeerClient;
  t.after(() => client.close());
  const pieces: number[][] = [];
  await new Promise<void>((resolve, reject) => {
    const call = client.FetchState({ worker_id: 'w-raw', generation: 0 }, { deadline: Date.now() + 5000 });
    call.on('data', (c: StateChunk__Output) => pieces.push([c.offset, c.data.length, c.total_bytes, c.step]));
    call.on('end', resolve);
    call.on('error', reject);
  });
  assert.equal(STATE_CHUNK_BYTES, 2 ** 20);
  assert.deepEqual(
    pieces,
    [0, 1, 2, 3, 4].map((i) => [i * STATE_CHUNK_BYTES, Math.min(STATE_CHUNK_BYTES, data.length - i * STATE_CHUNK_BYTES), data.length, 1234]),
  );
});

test('FetchState: an empty state still carries its step', async (t) => {
  const s = await server(t);
  s.setStateProvider(async () => ({ step: 7, data: Buffer.alloc(0) }));
  const got = await fetchState(s.address, { workerId: 'w', generation: 0, timeoutMs: 2000 });
  assert.deepEqual([got.step, got.data.length], [7, 0]);
});

test('FetchState: no provider is UNAVAILABLE, a failing provider too, an old generation FAILED_PRECONDITION', async (t) => {
  const s = await server(t);
  const opts = { workerId: 'w', generation: 4, timeoutMs: 2000 };
  await assert.rejects(fetchState(s.address, opts), new RegExp(`FetchState from ${s.address}: UNAVAILABLE: peer ${s.address} has no state to serve yet`));
  s.setStateProvider(async () => {
    throw new Error('checkpoint unreadable');
  });
  await assert.rejects(fetchState(s.address, opts), /UNAVAILABLE: .*could not produce its state: checkpoint unreadable/);
  s.setStateProvider(async () => ({ step: 1, data: Buffer.alloc(10) }));
  // The server's reducer is in generation 5: a request of generation 4 comes from a worker that missed a change.
  const reducer = new RingReducer(s);
  t.after(() => reducer.close());
  reducer.setTopology({ generation: 5, rank: 0, world: 1, peers: [s.address] });
  await assert.rejects(fetchState(s.address, opts), /FAILED_PRECONDITION: state request of generation 4, this peer is in generation 5/);
  assert.equal((await fetchState(s.address, { ...opts, generation: 5 })).data.length, 10);
});

test('FetchState: a peer that is down rejects within the deadline, naming it', async () => {
  const s = await PeerServer.start();
  const address = s.address;
  await s.close();
  const t0 = performance.now();
  await assert.rejects(fetchState(address, { workerId: 'w', generation: 0, timeoutMs: 1000 }), (err: Error) => {
    // Typed, so that a joiner waits for the next generation instead of stopping.
    assert.ok(err instanceof FetchStateError, err.name);
    assert.match(err.message, new RegExp(`FetchState from ${address}: (UNAVAILABLE|DEADLINE_EXCEEDED)`));
    return true;
  });
  assert.ok(performance.now() - t0 < 1500);
});
