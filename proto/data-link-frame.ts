/**
 * The data plane's framing (Peer.OpenDataLink in infobound.proto): after OpenDataLink hands out a
 * ticket, the ring predecessor opens a TCP (or TLS) connection to the port it names and sends frames;
 * the successor answers on the same connection. Every frame starts with two little-endian uint32s,
 * its type and the bytes of its payload, then the type's fixed fields, then the payload:
 *
 * | type | direction | fixed fields after (type, payload bytes) | payload |
 * |---|---|---|---|
 * | HELLO `0x31444249` ("IBD1") | first frame, sender → receiver | none | the ticket |
 * | CHUNK 1 | sender → receiver | u64 generation, step, offset, segment_length; u32 tensor, phase, segment, from_rank; u16 op, dtype (the CollectiveOp and DType numbers) | the chunk's little-endian elements |
 * | ACK 2 | receiver → sender | u32 count: chunks the receiver's reducer took | none |
 * | REFUSAL 3 | receiver → sender, then the receiver closes | u32 gRPC status code | UTF-8 details |
 *
 * A CHUNK frame carries exactly the fields of the Chunk message, so the receiver checks it as it checks
 * a Collective chunk. The payload is written from the sender's tensor as it lies in memory (no
 * per-chunk encoding) and read into one buffer per chunk.
 */
import type { Chunk, Chunk__Output } from './generated/infobound/v1/Chunk.js';
import type { CollectiveOp__Output } from './generated/infobound/v1/CollectiveOp.js';
import type { DType__Output } from './generated/infobound/v1/DType.js';

/** Frame types (the first uint32 of a frame). */
export const FrameType = { HELLO: 0x31444249, CHUNK: 1, ACK: 2, REFUSAL: 3 } as const;

/** Bytes before the payload, by frame type: (type, payload bytes) and the type's fixed fields. */
export const HEADER_BYTES: Readonly<Record<number, number>> = {
  [FrameType.HELLO]: 8,
  [FrameType.CHUNK]: 60,
  [FrameType.ACK]: 12,
  [FrameType.REFUSAL]: 12,
};

/** Largest HELLO payload (a ticket) and REFUSAL payload (its details) a reader accepts. */
export const MAX_TICKET_BYTES = 64;
export const MAX_REFUSAL_BYTES = 64 * 2 ** 10;

const OPS: readonly CollectiveOp__Output[] = ['OP_UNSPECIFIED', 'ALLREDUCE_SUM', 'ALLGATHER'];
const DTYPES: readonly DType__Output[] = ['DTYPE_UNSPECIFIED', 'FLOAT32', 'INT32'];

function writeU64(b: Buffer, at: number, v: number): void {
  b.writeUInt32LE(v % 2 ** 32, at);
  b.writeUInt32LE(Math.floor(v / 2 ** 32), at + 4);
}

function readU64(b: Buffer, at: number): number {
  return b.readUInt32LE(at) + b.readUInt32LE(at + 4) * 2 ** 32;
}

/** A frame's (type, payload bytes) and its fixed fields, in a buffer of `HEADER_BYTES[type]`. */
function header(type: number, payloadBytes: number): Buffer {
  const b = Buffer.allocUnsafe(HEADER_BYTES[type]!);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(payloadBytes, 4);
  return b;
}

/** The HELLO frame presenting `ticket`. */
export function helloFrame(ticket: Uint8Array): Buffer {
  return Buffer.concat([header(FrameType.HELLO, ticket.length), ticket]);
}

/** The header of a CHUNK frame; its payload is `chunk.data`, written after it as is. */
export function chunkHeader(chunk: Chunk, payloadBytes: number): Buffer {
  const b = header(FrameType.CHUNK, payloadBytes);
  writeU64(b, 8, Number(chunk.generation ?? 0));
  writeU64(b, 16, Number(chunk.step ?? 0));
  writeU64(b, 24, Number(chunk.offset ?? 0));
  writeU64(b, 32, Number(chunk.segment_length ?? 0));
  b.writeUInt32LE(chunk.tensor ?? 0, 40);
  b.writeUInt32LE(chunk.phase ?? 0, 44);
  b.writeUInt32LE(chunk.segment ?? 0, 48);
  b.writeUInt32LE(chunk.from_rank ?? 0, 52);
  b.writeUInt16LE(Math.max(0, OPS.indexOf(chunk.op as CollectiveOp__Output)), 56);
  b.writeUInt16LE(Math.max(0, DTYPES.indexOf(chunk.dtype as DType__Output)), 58);
  return b;
}

/** The chunk a CHUNK frame carries; an unknown op or dtype number reads as unspecified (the receiver refuses it). */
export function readChunk(head: Buffer, data: Buffer): Chunk__Output {
  return {
    generation: readU64(head, 8),
    step: readU64(head, 16),
    offset: readU64(head, 24),
    segment_length: readU64(head, 32),
    tensor: head.readUInt32LE(40),
    phase: head.readUInt32LE(44),
    segment: head.readUInt32LE(48),
    from_rank: head.readUInt32LE(52),
    op: OPS[head.readUInt16LE(56)] ?? 'OP_UNSPECIFIED',
    dtype: DTYPES[head.readUInt16LE(58)] ?? 'DTYPE_UNSPECIFIED',
    data,
  };
}

/** An ACK frame for `count` taken chunks. */
export function ackFrame(count: number): Buffer {
  const b = header(FrameType.ACK, 0);
  b.writeUInt32LE(count, 8);
  return b;
}

/** The count an ACK frame carries. */
export function readAckCount(head: Buffer): number {
  return head.readUInt32LE(8);
}

/** A REFUSAL frame: the gRPC status code and its details (cut to MAX_REFUSAL_BYTES). */
export function refusalFrame(code: number, details: string): Buffer {
  const text = Buffer.from(details, 'utf8').subarray(0, MAX_REFUSAL_BYTES);
  const b = header(FrameType.REFUSAL, text.length);
  b.writeUInt32LE(code, 8);
  return Buffer.concat([b, text]);
}

/** The status code of a REFUSAL frame. */
export function readRefusalCode(head: Buffer): number {
  return head.readUInt32LE(8);
}

/** What a FrameReader hands on: a whole frame, its header and payload in buffers of their own. */
export interface Frame {
  type: number;
  head: Buffer;
  payload: Buffer;
}

/** Why a FrameReader stopped: a frame it does not accept, or one whose payload is over its bound. */
export interface FrameError {
  oversized: boolean;
  message: string;
}

/**
 * Cuts a byte stream into frames. Only the types in `maxPayload` are accepted, each with a payload of at
 * most its bound; anything else makes `push` return a FrameError (the caller refuses and closes),
 * before a byte of an oversized payload is buffered.
 */
export class FrameReader {
  private readonly fixed = Buffer.allocUnsafe(Math.max(...Object.values(HEADER_BYTES)));
  private have = 0;
  private need = 8;
  private head?: Buffer;
  private payload?: Buffer;
  private filled = 0;

  constructor(private maxPayload: Readonly<Record<number, number>>) {}

  /** From the next frame on, accepts these types and bounds instead (a connection past its HELLO). */
  accept(maxPayload: Readonly<Record<number, number>>): void {
    this.maxPayload = maxPayload;
  }

  /**
   * Takes the next bytes of the stream; calls `onFrame` for every frame they complete (a frame's
   * handler may call accept() for the frames after it). Returns why the stream is unacceptable, or null.
   */
  push(data: Buffer, onFrame: (frame: Frame) => void): FrameError | null {
    let at = 0;
    while (at < data.length) {
      if (this.payload === undefined) {
        const n = Math.min(this.need - this.have, data.length - at);
        data.copy(this.fixed, this.have, at, at + n);
        this.have += n;
        at += n;
        if (this.have < this.need) break;
        const type = this.fixed.readUInt32LE(0);
        const limit = this.maxPayload[type];
        if (limit === undefined) return { oversized: false, message: `a data-plane frame of type ${type}, not expected here` };
        const bytes = HEADER_BYTES[type]!;
        if (this.need < bytes) {
          this.need = bytes;
          continue;
        }
        const length = this.fixed.readUInt32LE(4);
        if (length > limit) return { oversized: true, message: `a data-plane frame of type ${type} with ${length} payload bytes (at most ${limit})` };
        this.head = Buffer.from(this.fixed.subarray(0, bytes));
        // A buffer of its own (not the shared pool), so a chunk's elements start 4-byte aligned.
        this.payload = Buffer.allocUnsafeSlow(length);
        this.filled = 0;
      }
      const n = Math.min(this.payload.length - this.filled, data.length - at);
      data.copy(this.payload, this.filled, at, at + n);
      this.filled += n;
      at += n;
      if (this.filled === this.payload.length) {
        const frame = { type: this.head!.readUInt32LE(0), head: this.head!, payload: this.payload };
        this.payload = undefined;
        this.head = undefined;
        this.have = 0;
        this.need = 8;
        onFrame(frame);
      }
    }
    return null;
  }
}
