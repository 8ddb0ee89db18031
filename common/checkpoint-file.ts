/**
 * The checkpoint container: named arrays plus JSON metadata in one file, written atomically.
 *
 * Layout (all integers little-endian):
 *   8 bytes   magic "IBCKPT01"
 *   4 bytes   uint32 byte length H of the header
 *   H bytes   UTF-8 JSON header {"sha256": hex, "version": 1, "meta": {...}, "entries": [...]}
 *   zero padding to a multiple of 8: the data section starts here
 *   the arrays' bytes, each at its entry's `offset` from the data section's start (a multiple of 8,
 *   zero padding between), the file ending with the last array's last byte.
 * The SHA-256 covers every byte of the file except the 64 hex digits of the digest itself, which is
 * the header's first field so that it sits at a fixed position and can be filled in after streaming.
 */
import { constants as bufferConstants } from 'node:buffer';
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { dirname } from 'node:path';
import { syncDirectory } from './sync-directory.js';
import { UserError } from './user-error.js';

/** Element types a checkpoint array may have. */
export const CHECKPOINT_DTYPES = ['float32', 'int32', 'uint8'] as const;
/** One of {@link CHECKPOINT_DTYPES}. */
export type CheckpointDType = (typeof CHECKPOINT_DTYPES)[number];

/** The typed array that holds each dtype. */
interface ArrayOf {
  float32: Float32Array;
  int32: Int32Array;
  uint8: Uint8Array;
}

const ARRAY_TYPES = { float32: Float32Array, int32: Int32Array, uint8: Uint8Array } as const;

/** One named array: element type, shape (row-major) and values (as many as the shape's product). */
export type CheckpointArray = {
  [D in CheckpointDType]: { dtype: D; shape: readonly number[]; data: ArrayOf[D] };
}[CheckpointDType];

/** What a checkpoint holds. */
export interface CheckpointContents {
  /**
   * Any JSON object (step, config, data cursor, ...). It is stored as JSON, so it reads back as
   * JSON.parse(JSON.stringify(meta)); a NaN or infinite number in it is refused rather than turned into null.
   */
  meta: Record<string, unknown>;
  /**
   * The arrays by name. On write each `data` is read once, when that array is written, so a getter can
   * materialise the arrays one at a time. On read every `data` is a view into one buffer holding the
   * whole file (no copy), which stays alive as long as any of the views does.
   */
  tensors: Record<string, CheckpointArray>;
}

/** An array's place in the file, as the header lists it. */
interface Entry {
  name: string;
  dtype: CheckpointDType;
  shape: number[];
  /** Bytes from the start of the data section; a multiple of {@link ALIGN}. */
  offset: number;
  byteLength: number;
}

const MAGIC = Buffer.from('IBCKPT01', 'latin1');
/** The magic without its two version digits: a file that has it is a checkpoint of another format. */
const MAGIC_STEM = MAGIC.subarray(0, 6);
const FORMAT_VERSION = 1;
const PREAMBLE = MAGIC.length + 4;
/** The header starts with this, so the digest's 64 hex digits sit at a fixed file offset. */
const DIGEST_PREFIX = '{"sha256":"';
const DIGEST_AT = PREAMBLE + DIGEST_PREFIX.length;
const DIGEST_HEX = 64;
/** Array alignment, enough for any dtype's typed-array view. */
const ALIGN = 8;
/** Bytes per write call: large enough for throughput, small enough to keep the event loop responsive. */
const CHUNK = 8 << 20;
const ZEROS = Buffer.alloc(ALIGN);

/**
 * Writes a checkpoint to `path` atomically: the bytes go to `path.tmp-<pid>-<random>`, which is
 * fsynced and renamed over `path`, and then the directory is fsynced. A crash or an error at any point
 * leaves the previous file at `path` intact, and an error removes the temporary file. The arrays must
 * not change until the returned promise settles. I/O failures (no space, no permission, missing
 * directory) are {@link UserError}s naming the file; malformed arrays are TypeErrors or RangeErrors.
 */
export async function writeCheckpoint(path: string, contents: CheckpointContents): Promise<void> {
  const { prefix, pieces } = plan(contents);
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let handle: FileHandle | undefined;
  try {
    handle = await open(tmp, 'wx');
    const hash = digestStart(prefix);
    await writeAll(handle, prefix, 0);
    let position = prefix.length;
    for (const piece of pieces()) position = await writeHashed(handle, hash, piece, position);
    await writeAll(handle, Buffer.from(hash.digest('hex'), 'latin1'), DIGEST_AT);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmp, path);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch(() => undefined);
    throw asUserError(err, `checkpoint ${path}: cannot write`);
  }
  try {
    await syncDirectory(dirname(path));
  } catch (err) {
    throw asUserError(err, `checkpoint ${path}: written, but its directory could not be synced`);
  }
}

/**
 * The bytes a checkpoint file of `contents` holds, in memory: what a worker sends a joiner
 * (Peer.FetchState) without a round trip through a temporary file.
 */
export function encodeCheckpoint(contents: CheckpointContents): Buffer {
  const { prefix, pieces } = plan(contents);
  const parts = [prefix, ...pieces()];
  // allocUnsafeSlow: its own ArrayBuffer, so decodeCheckpoint can take aligned views of it.
  const out = Buffer.allocUnsafeSlow(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  const hash = digestStart(prefix);
  hash.update(out.subarray(prefix.length));
  out.write(hash.digest('hex'), DIGEST_AT, 'latin1');
  return out;
}

/**
 * Reads and verifies a checkpoint: magic, format version, header, sizes and checksum. Any problem is
 * a one-line {@link UserError} naming the file: not found, not a checkpoint, unsupported version,
 * corrupt header, truncated, trailing bytes, or checksum mismatch. The arrays are views into the file's
 * buffer (see {@link CheckpointContents.tensors}).
 */
export async function readCheckpoint(path: string): Promise<CheckpointContents> {
  const where = `checkpoint ${path}`;
  return decodeCheckpoint(await readWhole(path, where), where);
}

/**
 * Verifies and decodes a checkpoint's bytes (see {@link readCheckpoint}); problems are one-line
 * {@link UserError}s starting with `where`. The arrays are views into `buf` (or into an aligned copy,
 * when `buf` starts at an offset that typed-array views cannot take).
 */
export function decodeCheckpoint(bytes: Buffer, where: string): CheckpointContents {
  assertLittleEndian();
  const buf = bytes.byteOffset % ALIGN === 0 ? bytes : Buffer.from(Uint8Array.prototype.slice.call(bytes).buffer);
  const fail = (problem: string): UserError => new UserError(`${where}: ${problem}`);
  if (buf.length < PREAMBLE) {
    const n = Math.min(buf.length, MAGIC.length);
    if (buf.length > 0 && buf.subarray(0, n).equals(MAGIC.subarray(0, n))) {
      throw fail(`truncated: ${buf.length} bytes, shorter than the ${PREAMBLE}-byte preamble`);
    }
    throw fail('not an Infobound checkpoint (no IBCKPT01 magic)');
  }
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    if (buf.subarray(0, MAGIC_STEM.length).equals(MAGIC_STEM)) {
      const found = JSON.stringify(buf.toString('latin1', 0, MAGIC.length));
      throw fail(`unsupported format ${found} (this build reads "IBCKPT01")`);
    }
    throw fail('not an Infobound checkpoint (no IBCKPT01 magic)');
  }
  const headerEnd = PREAMBLE + buf.readUInt32LE(MAGIC.length);
  if (headerEnd > buf.length) throw fail(`truncated: ${buf.length} bytes, but the header alone needs ${headerEnd}`);

  let header: unknown;
  try {
    header = JSON.parse(buf.toString('utf8', PREAMBLE, headerEnd));
  } catch {
    throw fail('corrupt header (not valid JSON)');
  }
  if (!isObject(header)) throw fail('corrupt header (not a JSON object)');
  if (header.version !== FORMAT_VERSION) {
    throw fail(`unsupported version ${JSON.stringify(header.version)} (this build reads version ${FORMAT_VERSION})`);
  }
  const digest = header.sha256;
  if (typeof digest !== 'string' || !/^[0-9a-f]{64}$/.test(digest) || buf.toString('latin1', PREAMBLE, DIGEST_AT) !== DIGEST_PREFIX) {
    throw fail('corrupt header (no sha256 digest at its start)');
  }
  const { meta } = header;
  if (!isObject(meta)) throw fail('corrupt header (meta is not a JSON object)');
  const entries = parseEntries(header.entries, fail);

  const dataStart = alignUp(headerEnd);
  const last = entries[entries.length - 1];
  const expected = dataStart + (last === undefined ? 0 : last.offset + last.byteLength);
  if (buf.length < expected) throw fail(`truncated: ${buf.length} of ${expected} bytes`);
  if (buf.length > expected) throw fail(`${buf.length - expected} unexpected bytes after the end of the data`);

  const actual = createHash('sha256')
    .update(buf.subarray(0, DIGEST_AT))
    .update(buf.subarray(DIGEST_AT + DIGEST_HEX))
    .digest('hex');
  if (actual !== digest) throw fail('checksum mismatch: the file is corrupt');

  const tensors = Object.fromEntries(
    entries.map(({ name, dtype, shape, offset, byteLength }) => {
      const Ctor = ARRAY_TYPES[dtype];
      // allocUnsafeSlow gave the buffer its own ArrayBuffer (never a shared one).
      const data = new Ctor(buf.buffer as ArrayBuffer, buf.byteOffset + dataStart + offset, byteLength / Ctor.BYTES_PER_ELEMENT);
      return [name, { dtype, shape, data } as CheckpointArray];
    }),
  );
  return { meta, tensors };
}

// ---- writing ---------------------------------------------------------------------------------------

/**
 * A checkpoint's bytes before the digest is known: the preamble and header (with a zero digest), and
 * the data section as pieces (padding, then each array), produced one at a time so that a getter can
 * materialise arrays lazily.
 */
function plan(contents: CheckpointContents): { prefix: Buffer; pieces: () => Generator<Uint8Array> } {
  assertLittleEndian();
  const { meta, tensors } = contents;
  const entries = layout(tensors);
  const header = Buffer.from(JSON.stringify({ sha256: '0'.repeat(DIGEST_HEX), version: FORMAT_VERSION, meta, entries }, refuseNonFinite), 'utf8');
  const prefix = Buffer.alloc(alignUp(PREAMBLE + header.length));
  MAGIC.copy(prefix, 0);
  prefix.writeUInt32LE(header.length, MAGIC.length);
  header.copy(prefix, PREAMBLE);
  function* pieces(): Generator<Uint8Array> {
    let end = 0;
    for (const entry of entries) {
      yield ZEROS.subarray(0, entry.offset - end);
      const data = checkedData(entry, tensors[entry.name]!);
      yield new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      end = entry.offset + entry.byteLength;
    }
  }
  return { prefix, pieces };
}

/** A hash over the prefix without the digest's own hex digits, ready for the data section. */
function digestStart(prefix: Buffer): Hash {
  return createHash('sha256')
    .update(prefix.subarray(0, DIGEST_AT))
    .update(prefix.subarray(DIGEST_AT + DIGEST_HEX));
}

/** The header entries, from the arrays' dtypes and shapes only (their data is read later, once). */
function layout(tensors: Record<string, CheckpointArray>): Entry[] {
  const entries: Entry[] = [];
  let end = 0;
  for (const [name, array] of Object.entries(tensors)) {
    const { dtype, shape } = array;
    if (name === '') throw new TypeError('checkpoint array names must not be empty');
    if (!CHECKPOINT_DTYPES.includes(dtype)) {
      throw new TypeError(`checkpoint array "${name}": dtype must be one of ${CHECKPOINT_DTYPES.join(', ')}, got ${String(dtype)}`);
    }
    const count = elementCount(shape);
    if (count === undefined) {
      throw new RangeError(`checkpoint array "${name}": shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    const offset = alignUp(end);
    const byteLength = count * ARRAY_TYPES[dtype].BYTES_PER_ELEMENT;
    entries.push({ name, dtype, shape: [...shape], offset, byteLength });
    end = offset + byteLength;
  }
  return entries;
}

/** The array's data, checked against its entry: the dtype's typed array with the shape's length. */
function checkedData(entry: Entry, array: CheckpointArray): ArrayOf[CheckpointDType] {
  const data = array.data;
  const Ctor = ARRAY_TYPES[entry.dtype];
  if (!(data instanceof Ctor)) {
    throw new TypeError(`checkpoint array "${entry.name}": dtype ${entry.dtype} needs a ${Ctor.name}, got ${typeName(data)}`);
  }
  if (data.byteLength !== entry.byteLength) {
    throw new RangeError(
      `checkpoint array "${entry.name}": shape ${JSON.stringify(entry.shape)} needs ${entry.byteLength / Ctor.BYTES_PER_ELEMENT} values, data has ${data.length}`,
    );
  }
  return data;
}

/** Writes `bytes` at `position` in chunks, feeding the same bytes to the hash; returns the end position. */
async function writeHashed(handle: FileHandle, hash: Hash, bytes: Uint8Array, position: number): Promise<number> {
  for (let off = 0; off < bytes.length; off += CHUNK) {
    const chunk = bytes.subarray(off, off + CHUNK);
    hash.update(chunk);
    await writeAll(handle, chunk, position + off);
  }
  return position + bytes.length;
}

/** A write call may write less than asked; this one does not return until every byte is written. */
async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

/** JSON.stringify replacer: JSON has no NaN or Infinity, and silently writing null would lose them. */
function refuseNonFinite(key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new TypeError(`checkpoint meta: "${key}" is ${value}, which JSON cannot hold`);
  }
  return value;
}

/** File-system errors become a one-line UserError under `context`; other errors (bugs) pass through. */
function asUserError(err: unknown, context: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (e instanceof Error && typeof e.code === 'string' && typeof e.syscall === 'string') {
    return new UserError(`${context}: ${e.message}`, { cause: err });
  }
  return err;
}

// ---- reading ---------------------------------------------------------------------------------------

/** The whole file in one buffer that starts its own ArrayBuffer, so aligned offsets give aligned views. */
async function readWhole(path: string, where: string): Promise<Buffer> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${where}: file not found`);
    throw asUserError(err, `${where}: cannot open`);
  }
  try {
    const { size } = await handle.stat();
    if (size > bufferConstants.MAX_LENGTH) throw new UserError(`${where}: ${size} bytes is too large to read`);
    const buf = Buffer.allocUnsafeSlow(size);
    let filled = 0;
    while (filled < size) {
      const { bytesRead } = await handle.read(buf, filled, Math.min(CHUNK, size - filled), filled);
      if (bytesRead === 0) break; // the file shrank while being read
      filled += bytesRead;
    }
    return buf.subarray(0, filled);
  } catch (err) {
    throw asUserError(err, `${where}: cannot read`);
  } finally {
    await handle.close();
  }
}

/** Checks the header's entries: known dtypes, consistent sizes, aligned and in order, unique names. */
function parseEntries(raw: unknown, fail: (problem: string) => UserError): Entry[] {
  if (!Array.isArray(raw)) throw fail('corrupt header (entries is not a list)');
  const names = new Set<string>();
  let end = 0;
  return raw.map((e: unknown, i) => {
    const bad = (why: string): UserError => fail(`corrupt header (entry ${i}: ${why})`);
    if (!isObject(e)) throw bad('not an object');
    const { name, dtype, shape, offset, byteLength } = e;
    if (typeof name !== 'string' || name === '' || names.has(name)) throw bad('missing or repeated name');
    names.add(name);
    if (!CHECKPOINT_DTYPES.includes(dtype as CheckpointDType)) throw bad(`unknown dtype ${JSON.stringify(dtype)}`);
    const count = Array.isArray(shape) ? elementCount(shape) : undefined;
    if (count === undefined) throw bad('bad shape');
    const bytes = count * ARRAY_TYPES[dtype as CheckpointDType].BYTES_PER_ELEMENT;
    if (byteLength !== bytes) throw bad(`byteLength ${JSON.stringify(byteLength)} does not match the shape (${bytes})`);
    if (!Number.isSafeInteger(offset) || (offset as number) < end || (offset as number) % ALIGN !== 0) {
      throw bad(`offset ${JSON.stringify(offset)} is not an aligned position after the previous array`);
    }
    end = (offset as number) + bytes;
    return { name, dtype: dtype as CheckpointDType, shape: shape as number[], offset: offset as number, byteLength: bytes };
  });
}

// ---- helpers ---------------------------------------------------------------------------------------

/** Product of a shape's dimensions, or undefined when it is not a list of non-negative safe integers. */
function elementCount(shape: readonly unknown[]): number | undefined {
  if (!Array.isArray(shape)) return undefined;
  let count = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || (d as number) < 0) return undefined;
    count *= d as number;
  }
  return Number.isSafeInteger(count) ? count : undefined;
}

function alignUp(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function typeName(value: unknown): string {
  return typeof value === 'object' && value !== null ? value.constructor.name : typeof value;
}

/** The format is little-endian and arrays are written as their in-memory bytes. */
function assertLittleEndian(): void {
  if (endianness() !== 'LE') throw new UserError('checkpoints need a little-endian machine');
}
