import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../common/user-error.js';
import { readInputChunks } from './input-stream.js';

/**
 * Default image dataset directory: where Debian's `dataset-fashion-mnist` package installs
 * Fashion-MNIST (gzipped IDX files).
 */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Splits of an MNIST-style image dataset. */
export const IMAGE_SPLITS = ['train', 'test'] as const;
/** One of {@link IMAGE_SPLITS}. */
export type ImageSplit = (typeof IMAGE_SPLITS)[number];

/** An IDX array of unsigned bytes. */
export interface IdxArray {
  /** Size of each dimension, outermost first. */
  dims: number[];
  /** The values in row-major order; length = product of dims. */
  data: Uint8Array;
}

/** Images with their labels, as stored in an MNIST-style dataset. */
export interface ImageDataset {
  /** count × rows × cols grey levels (0–255), row-major. */
  images: Uint8Array;
  /** One class label per image. */
  labels: Uint8Array;
  /** Number of images (and labels). */
  count: number;
  /** Image height in pixels. */
  rows: number;
  /** Image width in pixels. */
  cols: number;
}

/** IDX element types (third magic byte); only unsigned bytes are supported. */
const IDX_TYPES: Record<number, string> = {
  8: 'unsigned byte',
  9: 'signed byte',
  11: 'int16',
  12: 'int32',
  13: 'float32',
  14: 'float64',
};
const UBYTE = 0x08;

/** Refuses to allocate for headers that declare more data than one Uint8Array can hold. */
const MAX_DATA_BYTES = 2 ** 31 - 1;

/** `0x…` of the given bytes. */
function hex(bytes: Uint8Array): string {
  return `0x${Buffer.from(bytes).toString('hex')}`;
}

/** Validates the header and returns the dims, or undefined while more header bytes are needed. */
function parseHeader(path: string, head: Buffer, complete: boolean): number[] | undefined {
  if (head.length >= 2 && (head[0] !== 0 || head[1] !== 0)) {
    throw new UserError(`${path}: not an IDX file (magic number ${hex(head.subarray(0, 4))}, expected 0x0000 then type and dimension count)`);
  }
  if (head.length >= 3 && head[2] !== UBYTE) {
    const type = head[2]!;
    const name = IDX_TYPES[type];
    throw new UserError(
      name === undefined
        ? `${path}: unknown IDX data type 0x${type.toString(16).padStart(2, '0')}`
        : `${path}: IDX data type 0x${type.toString(16).padStart(2, '0')} (${name}) is not supported, only 0x08 (unsigned byte)`,
    );
  }
  const needed = head.length >= 4 ? 4 + 4 * head[3]! : 4;
  if (head.length < needed) {
    if (complete) throw new UserError(`${path}: truncated IDX header (expected ${needed} bytes, found ${head.length})`);
    return undefined;
  }
  const dims: number[] = [];
  for (let i = 0; i < head[3]!; i++) dims.push(head.readUInt32BE(4 + 4 * i));
  return dims;
}

/**
 * Reads an IDX file (the MNIST format, plain or gzipped) of unsigned bytes. Bad magic numbers,
 * unsupported element types, truncated headers or data, and bytes beyond the declared data are
 * one-line UserErrors naming the file.
 */
export async function readIdx(path: string): Promise<IdxArray> {
  // Chunks are kept as read and copied once at the end, so a corrupt header declaring gigabytes
  // costs no more memory than the file really has.
  const chunks: Buffer[] = [];
  let bytes = 0;
  let dims: number[] | undefined;
  let headerBytes = 0;
  let dataBytes = 0;
  for await (const chunk of readInputChunks(path)) {
    // Bytes beyond the declared data are only counted, for the error message.
    if (dims === undefined || bytes < headerBytes + dataBytes) chunks.push(chunk);
    bytes += chunk.length;
    if (dims === undefined) {
      dims = parseHeader(path, Buffer.concat(chunks), false);
      if (dims !== undefined) {
        headerBytes = 4 + 4 * dims.length;
        dataBytes = dims.reduce((a, b) => a * b, 1);
        if (dataBytes > MAX_DATA_BYTES) {
          throw new UserError(`${path}: IDX header declares ${dims.join('×')} = ${dataBytes} bytes, more than this reader supports`);
        }
      }
    }
  }
  dims ??= parseHeader(path, Buffer.concat(chunks), true)!;
  const found = bytes - headerBytes;
  if (found < dataBytes) {
    throw new UserError(`${path}: truncated IDX data (dims ${dims.join('×')}: expected ${dataBytes} bytes of data, found ${found})`);
  }
  if (found > dataBytes) {
    throw new UserError(
      `${path}: ${found - dataBytes} bytes of trailing garbage after the IDX data (dims ${dims.join('×')}: expected ${dataBytes} bytes of data, found ${found})`,
    );
  }
  // A fresh array, not a view into chunk memory that Node may pool.
  const data = new Uint8Array(dataBytes);
  let offset = -headerBytes;
  for (const chunk of chunks) {
    const skip = Math.max(0, -offset);
    if (skip < chunk.length && offset < dataBytes) data.set(chunk.subarray(skip, Math.min(chunk.length, dataBytes - offset)), offset + skip);
    offset += chunk.length;
  }
  return { dims, data };
}

/** File names (without `.gz`) of each split's images and labels. */
const SPLIT_FILES: Record<ImageSplit, { images: string; labels: string }> = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' },
};

/** Path of `name` or `name.gz` in `dir`, preferring the uncompressed one. */
async function findFile(dir: string, name: string, what: string): Promise<string> {
  const candidates = [name, `${name}.gz`];
  for (const candidate of candidates) {
    const path = join(dir, candidate);
    try {
      await access(path);
      return path;
    } catch {
      // try the next name
    }
  }
  throw new UserError(`${dir}: no ${what} file (looked for ${candidates.join(', ')})`);
}

/**
 * Reads one split of an MNIST-style dataset directory (MNIST, Fashion-MNIST; e.g.
 * {@link FASHION_MNIST_DIR}): `train-*` or `t10k-*` images (3-D) and labels (1-D) of equal count,
 * each file plain or gzipped.
 */
export async function readImageDataset(dir: string, split: ImageSplit): Promise<ImageDataset> {
  const names = SPLIT_FILES[split];
  if (names === undefined) throw new UserError(`image split must be one of ${IMAGE_SPLITS.join(', ')}, got "${split}"`);
  const imagesPath = await findFile(dir, names.images, `${split} images`);
  const labelsPath = await findFile(dir, names.labels, `${split} labels`);
  const images = await readIdx(imagesPath);
  if (images.dims.length !== 3) {
    throw new UserError(`${imagesPath}: images must be 3-D (count×rows×cols), got ${images.dims.length}-D [${images.dims.join(', ')}]`);
  }
  const labels = await readIdx(labelsPath);
  if (labels.dims.length !== 1) {
    throw new UserError(`${labelsPath}: labels must be 1-D, got ${labels.dims.length}-D [${labels.dims.join(', ')}]`);
  }
  const [count, rows, cols] = images.dims as [number, number, number];
  if (labels.dims[0] !== count) {
    throw new UserError(`${dir}: ${split} split has ${count} images but ${labels.dims[0]} labels`);
  }
  return { images: images.data, labels: labels.data, count, rows, cols };
}
