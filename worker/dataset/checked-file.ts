import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { UserError } from '../../common/user-error.js';

/** The SHA-256 of `data` in hex, as a manifest records it. */
export function sha256Of(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * A dataset file's bytes, checked against the manifest's SHA-256 before anything else reads them: a
 * missing, truncated or altered file is a one-line UserError naming it (`what`: "dataset shard").
 * The bytes start an ArrayBuffer of their own, so typed-array columns at aligned offsets are views
 * of them, not copies (a 64 MiB shard's copy took 60 ms).
 */
export async function readChecked(path: string, sha256: string, what: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    const file = await open(path, 'r');
    try {
      const size = (await file.stat()).size;
      bytes = Buffer.from(new ArrayBuffer(size));
      let at = 0;
      while (at < size) {
        const { bytesRead } = await file.read(bytes, at, size - at, at);
        if (bytesRead === 0) break;
        at += bytesRead;
      }
      bytes = bytes.subarray(0, at);
    } finally {
      await file.close();
    }
  } catch (err) {
    throw new UserError(`${what} ${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (sha256Of(bytes) !== sha256) throw new UserError(`${what} ${path}: corrupt (its SHA-256 is not the manifest's): prepare the dataset again`);
  return bytes;
}

/** A view of `count` elements of `type` at byte `offset` of `bytes` when aligned, else an aligned copy. */
export function columnOf<T extends Int32Array | Uint32Array | Float64Array>(
  type: { new (buffer: ArrayBuffer, byteOffset: number, length: number): T; BYTES_PER_ELEMENT: number },
  bytes: Buffer,
  offset: number,
  count: number,
): T {
  const at = bytes.byteOffset + offset;
  if (at % type.BYTES_PER_ELEMENT === 0) return new type(bytes.buffer as ArrayBuffer, at, count);
  const copy = new ArrayBuffer(count * type.BYTES_PER_ELEMENT);
  new Uint8Array(copy).set(bytes.subarray(offset, offset + copy.byteLength));
  return new type(copy, 0, count);
}
