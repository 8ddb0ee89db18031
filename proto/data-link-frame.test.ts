import test from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../common/random.js';
import {
  FrameReader,
  FrameType,
  ackFrame,
  chunkHeader,
  helloFrame,
  readAckCount,
  readChunk,
  readRefusalCode,
  refusalFrame,
  type Frame,
} from './data-link-frame.js';
import type { Chunk } from './generated/infobound/v1/Chunk.js';

const CHUNK: Chunk = {
  generation: 2 ** 40 + 3,
  step: 123_456_789_012,
  op: 'ALLGATHER',
  tensor: 7,
  phase: 2,
  segment: 1,
  offset: 2 ** 33,
  segment_length: 2 ** 32 - 1,
  from_rank: 5,
  dtype: 'INT32',
};

test('frames cut anywhere in the byte stream come out whole, with every field of the chunk', () => {
  const payload = Buffer.from(Int32Array.from([1, -2, 3, 2 ** 31 - 1]).buffer);
  const stream = Buffer.concat([
    helloFrame(Buffer.alloc(32, 9)),
    chunkHeader(CHUNK, payload.length),
    payload,
    chunkHeader({ ...CHUNK, op: 'ALLREDUCE_SUM', dtype: 'FLOAT32' }, 0),
    ackFrame(3),
    refusalFrame(7, 'no ticket'),
  ]);
  const accept = { [FrameType.HELLO]: 64, [FrameType.CHUNK]: 64, [FrameType.ACK]: 0, [FrameType.REFUSAL]: 64 };
  const rng = new Rng(5);
  for (let trial = 0; trial < 200; trial++) {
    const reader = new FrameReader(accept);
    const frames: Frame[] = [];
    // Pieces of 1 byte up to the whole stream, so every boundary (inside a header, a payload, between frames) occurs.
    for (let at = 0; at < stream.length; ) {
      const n = trial === 0 ? 1 : 1 + Math.floor(rng.next() * (trial < 100 ? 16 : stream.length));
      assert.equal(
        reader.push(stream.subarray(at, at + n), (f) => frames.push(f)),
        null,
      );
      at += n;
    }
    assert.deepEqual(
      frames.map((f) => f.type),
      [FrameType.HELLO, FrameType.CHUNK, FrameType.CHUNK, FrameType.ACK, FrameType.REFUSAL],
    );
    assert.deepEqual([...frames[0]!.payload], Array(32).fill(9));
    const chunk = readChunk(frames[1]!.head, frames[1]!.payload);
    assert.deepEqual({ ...chunk, data: undefined }, { ...CHUNK, data: undefined });
    assert.deepEqual(Array.from(new Int32Array(chunk.data.buffer, chunk.data.byteOffset, 4)), [1, -2, 3, 2 ** 31 - 1]);
    assert.equal(chunk.data.byteOffset % 4, 0, 'a payload starts 4-byte aligned');
    const empty = readChunk(frames[2]!.head, frames[2]!.payload);
    assert.equal(empty.data.length, 0);
    assert.equal(empty.op, 'ALLREDUCE_SUM');
    assert.equal(empty.dtype, 'FLOAT32');
    assert.equal(readAckCount(frames[3]!.head), 3);
    assert.equal(readRefusalCode(frames[4]!.head), 7);
    assert.equal(frames[4]!.payload.toString(), 'no ticket');
  }
});

test('a frame of a type not accepted, or over its payload bound, stops the reader before its payload is buffered', () => {
  const reader = new FrameReader({ [FrameType.CHUNK]: 16 });
  const frames: Frame[] = [];
  assert.deepEqual(
    reader.push(ackFrame(1), (f) => frames.push(f)),
    { oversized: false, message: 'a data-plane frame of type 2, not expected here' },
  );
  const big = new FrameReader({ [FrameType.CHUNK]: 16 });
  // Only the header is given: the bound is judged from the declared length alone.
  assert.deepEqual(
    big.push(chunkHeader(CHUNK, 20), (f) => frames.push(f)),
    { oversized: true, message: 'a data-plane frame of type 1 with 20 payload bytes (at most 16)' },
  );
  // After accept(), the next frames are judged by the new bounds.
  const switching = new FrameReader({ [FrameType.HELLO]: 32 });
  const stream = Buffer.concat([helloFrame(Buffer.alloc(32)), chunkHeader(CHUNK, 4), Buffer.alloc(4), helloFrame(Buffer.alloc(32))]);
  const error = switching.push(stream, (f) => {
    frames.push(f);
    if (f.type === FrameType.HELLO) switching.accept({ [FrameType.CHUNK]: 4 });
  });
  assert.deepEqual(
    frames.map((f) => f.type),
    [FrameType.HELLO, FrameType.CHUNK],
  );
  assert.equal(error!.message, `a data-plane frame of type ${FrameType.HELLO}, not expected here`);
});

test('an unknown op or dtype number reads as unspecified, which the receiver refuses', () => {
  const head = chunkHeader(CHUNK, 0);
  head.writeUInt16LE(9, 56);
  head.writeUInt16LE(9, 58);
  const chunk = readChunk(head, Buffer.alloc(0));
  assert.equal(chunk.op, 'OP_UNSPECIFIED');
  assert.equal(chunk.dtype, 'DTYPE_UNSPECIFIED');
});
