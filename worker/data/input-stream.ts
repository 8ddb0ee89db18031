import { createReadStream } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { UserError } from '../../common/user-error.js';

/** The first two bytes of every gzip member (RFC 1952). */
const GZIP_MAGIC = [0x1f, 0x8b] as const;

/** Short, path-free descriptions of the usual open/read failures (Node's messages repeat the path). */
const FS_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'a parent is not a directory',
};

/** One-line UserError for a file that cannot be opened or read. */
function readError(path: string, err: unknown): UserError {
  const e = err as NodeJS.ErrnoException;
  return new UserError(`${path}: cannot read file (${(e.code && FS_ERRORS[e.code]) || e.message})`);
}

/**
 * Streams the bytes of a file, gunzipping transparently when it starts with the gzip magic bytes
 * (whatever its extension), so that every reader accepts `.gz` and plain inputs alike. Nothing is
 * buffered beyond one chunk. A missing or unreadable file, one that is not a regular file (a FIFO, a
 * device), or a corrupt or truncated gzip stream, throws a one-line UserError naming the file.
 * `onBytes` hears of every piece of the file read (before decompression), for progress reports.
 */
export async function* readInputChunks(path: string, onBytes?: (fileBytes: number) => void): AsyncGenerator<Buffer> {
  // Before opening: opening a FIFO waits for a writer, and a device such as /dev/zero never ends.
  let kind: Stats;
  try {
    kind = await stat(path);
  } catch (err) {
    throw readError(path, err);
  }
  if (!kind.isFile() && !kind.isDirectory()) throw new UserError(`${path}: not a regular file (a FIFO, device or socket is not read as data)`);
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw readError(path, err);
  }
  let gzip: boolean;
  try {
    const magic = Buffer.alloc(2);
    const { bytesRead } = await handle.read(magic, 0, 2, 0);
    gzip = bytesRead === 2 && magic[0] === GZIP_MAGIC[0] && magic[1] === GZIP_MAGIC[1];
  } catch (err) {
    await handle.close();
    throw readError(path, err); // e.g. EISDIR: a directory opens fine on Linux, reading it fails
  }
  // The stream owns the handle from here on and closes it when it ends or is destroyed.
  const file = createReadStream(path, { fd: handle, start: 0 });
  // Bytes of the file itself (compressed, for gzip): how far through it a reader is.
  if (onBytes !== undefined) file.on('data', (chunk) => onBytes(chunk.length));
  if (!gzip) {
    try {
      yield* file;
    } catch (err) {
      throw readError(path, err);
    } finally {
      file.destroy();
    }
    return;
  }
  const gunzip = createGunzip();
  let fileError: unknown;
  file.on('error', (err) => {
    fileError = err;
    gunzip.destroy(err);
  });
  file.pipe(gunzip);
  try {
    yield* gunzip;
  } catch (err) {
    if (fileError !== undefined) throw readError(path, fileError);
    throw new UserError(`${path}: not a valid gzip stream (${(err as Error).message})`);
  } finally {
    // Covers a consumer that stops early: pipe() does not destroy its source.
    file.destroy();
    gunzip.destroy();
  }
}
