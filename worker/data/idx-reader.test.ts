import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { UserError } from '../../common/user-error.js';
import { tempDir } from '../../testing/test-helpers.js';
import { FASHION_MNIST_DIR, readIdx, readImageDataset } from './idx-reader.js';

/** An IDX file: magic 00 00 type ndims, big-endian uint32 dims, then `data`. */
function idx(dims: number[], data: Uint8Array, type = 0x08): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = type;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, data]);
}

/** 0, 1, 2, … (mod 256) of length n. */
function ramp(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => i % 256);
}

/** Asserts that reading `path` fails with exactly `message`, as a UserError. */
async function rejectsWith(promise: Promise<unknown>, message: string): Promise<void> {
  await assert.rejects(promise, (err: Error) => {
    assert.ok(err instanceof UserError, String(err));
    assert.equal(err.message, message);
    return true;
  });
}

test('reads plain and gzipped IDX files', async (t) => {
  const dir = tempDir(t);
  const plain = join(dir, 'cube');
  writeFileSync(plain, idx([3, 4, 5], ramp(60)));
  assert.deepEqual(await readIdx(plain), { dims: [3, 4, 5], data: ramp(60) });
  // Gzip is detected from the content, not the name; also a large file spanning many chunks.
  const gz = join(dir, 'big-idx1');
  writeFileSync(gz, gzipSync(idx([300_000], ramp(300_000))));
  const big = await readIdx(gz);
  assert.deepEqual(big.dims, [300_000]);
  assert.deepEqual(big.data, ramp(300_000));
  assert.equal(big.data.byteOffset, 0);
  assert.equal(big.data.buffer.byteLength, 300_000);
  // A zero dimension is a valid, empty array.
  const empty = join(dir, 'empty');
  writeFileSync(empty, idx([0, 28, 28], new Uint8Array(0)));
  assert.deepEqual(await readIdx(empty), { dims: [0, 28, 28], data: new Uint8Array(0) });
});

test('a bad magic number is reported in hex', async (t) => {
  const dir = tempDir(t);
  const zip = join(dir, 'zip');
  writeFileSync(zip, Buffer.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0]));
  await rejectsWith(readIdx(zip), `${zip}: not an IDX file (magic number 0x504b0304, expected 0x0000 then type and dimension count)`);
  const text = join(dir, 'text');
  writeFileSync(text, 'hi');
  await rejectsWith(readIdx(text), `${text}: not an IDX file (magic number 0x6869, expected 0x0000 then type and dimension count)`);
  // The same check applies after gunzip.
  const gz = join(dir, 'gz');
  writeFileSync(gz, gzipSync(Buffer.from([0x00, 0x01, 0x08, 0x01, 0, 0, 0, 0])));
  await rejectsWith(readIdx(gz), `${gz}: not an IDX file (magic number 0x00010801, expected 0x0000 then type and dimension count)`);
});

test('element types other than unsigned byte are refused by name', async (t) => {
  const dir = tempDir(t);
  const float = join(dir, 'float');
  writeFileSync(float, idx([2], new Uint8Array(8), 0x0d));
  await rejectsWith(readIdx(float), `${float}: IDX data type 0x0d (float32) is not supported, only 0x08 (unsigned byte)`);
  const unknown = join(dir, 'unknown');
  writeFileSync(unknown, idx([2], new Uint8Array(2), 0x42));
  await rejectsWith(readIdx(unknown), `${unknown}: unknown IDX data type 0x42`);
});

test('truncated headers and data, and trailing garbage, are errors naming the file', async (t) => {
  const dir = tempDir(t);
  const empty = join(dir, 'empty');
  writeFileSync(empty, '');
  await rejectsWith(readIdx(empty), `${empty}: truncated IDX header (expected 4 bytes, found 0)`);
  const head = join(dir, 'head');
  writeFileSync(head, idx([10, 28, 28], new Uint8Array(0)).subarray(0, 10));
  await rejectsWith(readIdx(head), `${head}: truncated IDX header (expected 16 bytes, found 10)`);
  const body = join(dir, 'body');
  writeFileSync(body, idx([10, 28, 28], ramp(7000)));
  await rejectsWith(readIdx(body), `${body}: truncated IDX data (dims 10×28×28: expected 7840 bytes of data, found 7000)`);
  const bodyGz = join(dir, 'body.gz');
  writeFileSync(bodyGz, gzipSync(idx([10, 28, 28], ramp(7000))));
  await rejectsWith(readIdx(bodyGz), `${bodyGz}: truncated IDX data (dims 10×28×28: expected 7840 bytes of data, found 7000)`);
  const trailing = join(dir, 'trailing');
  writeFileSync(trailing, idx([4], ramp(100_000)));
  await rejectsWith(readIdx(trailing), `${trailing}: 99996 bytes of trailing garbage after the IDX data (dims 4: expected 4 bytes of data, found 100000)`);
  const huge = join(dir, 'huge');
  writeFileSync(huge, idx([100_000, 100_000], ramp(10)));
  await rejectsWith(readIdx(huge), `${huge}: IDX header declares 100000×100000 = 10000000000 bytes, more than this reader supports`);
});

test('a corrupt gzip stream or a missing file is a UserError', async (t) => {
  const dir = tempDir(t);
  const corrupt = join(dir, 'corrupt.gz');
  writeFileSync(corrupt, Buffer.from([0x1f, 0x8b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
  await assert.rejects(readIdx(corrupt), { name: 'UserError', message: new RegExp(`^${corrupt}: not a valid gzip stream \\(`) });
  const missing = join(dir, 'missing');
  await rejectsWith(readIdx(missing), `${missing}: cannot read file (no such file)`);
});

test('readImageDataset reads both splits, each file plain or gzipped', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'train-images-idx3-ubyte'), idx([5, 3, 2], ramp(30)));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(idx([5], Uint8Array.from([9, 0, 3, 3, 1]))));
  writeFileSync(join(dir, 't10k-images-idx3-ubyte.gz'), gzipSync(idx([2, 3, 2], ramp(12))));
  writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), idx([2], Uint8Array.from([4, 2])));
  assert.deepEqual(await readImageDataset(dir, 'train'), {
    images: ramp(30),
    labels: Uint8Array.from([9, 0, 3, 3, 1]),
    count: 5,
    rows: 3,
    cols: 2,
  });
  assert.deepEqual(await readImageDataset(dir, 'test'), { images: ramp(12), labels: Uint8Array.from([4, 2]), count: 2, rows: 3, cols: 2 });
});

test('readImageDataset checks files, ranks and counts', async (t) => {
  const dir = tempDir(t);
  await rejectsWith(readImageDataset(dir, 'test'), `${dir}: no test images file (looked for t10k-images-idx3-ubyte, t10k-images-idx3-ubyte.gz)`);
  writeFileSync(join(dir, 't10k-images-idx3-ubyte'), idx([2, 3, 2], ramp(12)));
  await rejectsWith(readImageDataset(dir, 'test'), `${dir}: no test labels file (looked for t10k-labels-idx1-ubyte, t10k-labels-idx1-ubyte.gz)`);
  writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), idx([3], Uint8Array.from([1, 2, 3])));
  await rejectsWith(readImageDataset(dir, 'test'), `${dir}: test split has 2 images but 3 labels`);
  const labels2d = join(dir, 't10k-labels-idx1-ubyte');
  writeFileSync(labels2d, idx([2, 1], Uint8Array.from([1, 2])));
  await rejectsWith(readImageDataset(dir, 'test'), `${labels2d}: labels must be 1-D, got 2-D [2, 1]`);
  const images2d = join(dir, 't10k-images-idx3-ubyte');
  writeFileSync(images2d, idx([2, 6], ramp(12)));
  await rejectsWith(readImageDataset(dir, 'test'), `${images2d}: images must be 3-D (count×rows×cols), got 2-D [2, 6]`);
});

test('reads the Fashion-MNIST files of Debian’s dataset-fashion-mnist package', async (t) => {
  if (!existsSync(FASHION_MNIST_DIR)) {
    t.skip(`${FASHION_MNIST_DIR} not installed (apt-get install dataset-fashion-mnist)`);
    return;
  }
  for (const [split, count] of [
    ['train', 60_000],
    ['test', 10_000],
  ] as const) {
    const ds = await readImageDataset(FASHION_MNIST_DIR, split);
    assert.equal(ds.count, count);
    assert.equal(ds.rows, 28);
    assert.equal(ds.cols, 28);
    assert.equal(ds.images.length, count * 28 * 28);
    assert.equal(ds.labels.length, count);
    // Fashion-MNIST is balanced: every class 0..9 has exactly a tenth of each split.
    const perClass = new Array<number>(10).fill(0);
    for (const label of ds.labels) {
      assert.ok(label <= 9, `label ${label}`);
      perClass[label]!++;
    }
    assert.deepEqual(perClass, new Array(10).fill(count / 10));
    // Real images: dark background, bright pixels present.
    let sum = 0;
    let max = 0;
    for (let i = 0; i < 28 * 28 * 100; i++) {
      sum += ds.images[i]!;
      max = Math.max(max, ds.images[i]!);
    }
    assert.equal(max, 255);
    assert.ok(sum / (28 * 28 * 100) > 30 && sum / (28 * 28 * 100) < 120, `mean ${sum / (28 * 28 * 100)}`);
  }
});
